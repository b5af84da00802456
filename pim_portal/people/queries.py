"""Reads of the Users and Groups pages: searches that stay fast at tens of thousands of users.

Search is "starts with" (as Entra ID's user search is) on the lower-cased display name,
username and e-mail, written as a range (`lower(x) >= q AND lower(x) < q + U+10FFFF`) so that
an index on `Lower(x)` serves it on SQLite and PostgreSQL alike. Lists are paginated and load
what they show in a fixed number of queries, whatever the number of rows.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Lower
from django_otp.plugins.otp_totp.models import TOTPDevice

from assignments.models import Assignment
from pim_portal.models import Source
from pim_portal.people import rules

SEARCH_MAX = 150
ACTIVE, INACTIVE = "active", "inactive"
STATUS_FILTERS = (ACTIVE, INACTIVE)
SOURCE_FILTERS = tuple(Source.values)
_TOP = "\U0010ffff"  # the highest code point: every string starting with q sorts below q + it


def search_term(raw) -> str:
    return str(raw or "").strip().lower()[:SEARCH_MAX]


def _starts_with(alias: str, term: str) -> Q:
    return Q(**{f"{alias}__gte": term, f"{alias}__lt": term + _TOP})


def users_listed(*, q: str = "", source: str = "", status: str = ""):
    """Users matching the search and filters, by display name, with whether each has an
    authenticator (one subquery, no query per row)."""
    users = get_user_model().objects.all()
    term = search_term(q)
    if term:
        users = users.alias(
            name_lower=Lower("display_name"),
            username_lower=Lower("username"),
            email_lower=Lower("email"),
        ).filter(
            _starts_with("name_lower", term)
            | _starts_with("username_lower", term)
            | _starts_with("email_lower", term)
        )
    if source in SOURCE_FILTERS:
        users = users.filter(source=source)
    if status == ACTIVE:
        users = users.filter(is_active=True)
    elif status == INACTIVE:
        users = users.filter(is_active=False)
    has_authenticator = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    return users.annotate(has_authenticator=Exists(has_authenticator)).order_by(
        "display_name", "username", "pk"
    )


def groups_listed(*, q: str = "", source: str = ""):
    """Groups matching the search, with their source, member count and whether they are
    role-assignable (eligible or active for an administrator role)."""
    groups = Group.objects.select_related("identity")
    term = search_term(q)
    if term:
        groups = groups.alias(name_lower=Lower("name")).filter(_starts_with("name_lower", term))
    if source == Source.LOCAL:
        groups = groups.filter(Q(identity__isnull=True) | Q(identity__source=Source.LOCAL))
    elif source in SOURCE_FILTERS:
        groups = groups.filter(identity__source=source)
    members = (
        get_user_model()
        .groups.through.objects.filter(group_id=OuterRef("pk"))
        .order_by()
        .values("group_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return groups.annotate(
        member_count=members, role_assignable=rules.role_assignable_annotation()
    ).order_by("name", "pk")


def members_listed(group, *, q: str = ""):
    users = group.user_set.all()
    term = search_term(q)
    if term:
        users = users.alias(
            name_lower=Lower("display_name"), username_lower=Lower("username")
        ).filter(_starts_with("name_lower", term) | _starts_with("username_lower", term))
    return users.order_by("display_name", "username", "pk")


def user_groups(user):
    return user.groups.select_related("identity").order_by("name")


def user_assignments(user, grants):
    """The user's assignments not ended (direct or through a group) that the viewer may see."""
    return (
        Assignment.objects.for_user(user)
        .not_ended()
        .restrict(grants, "view")
        .with_related()
        .order_by("role__name", "scope__path", "kind", "start")
    )


def user_assignment_count(user) -> int:
    return Assignment.objects.for_user(user).not_ended().count()


def find_user(identifier: str):
    """The user a username or e-mail names (exactly, case-insensitively), or None."""
    identifier = (identifier or "").strip()
    if not identifier:
        return None
    users = get_user_model().objects.alias(
        username_lower=Lower("username"), email_lower=Lower("email")
    )
    lowered = identifier.lower()
    match = users.filter(username_lower=lowered).first()
    if match is None and "@" in identifier:
        found = list(users.filter(email_lower=lowered)[:2])
        match = found[0] if len(found) == 1 else None
    return match

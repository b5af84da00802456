"""Break-glass: the sign-ins of emergency access accounts, and their follow-up.

Every sign-in of an account marked `is_emergency_access` (by any method) opens an
`EmergencyAccessUse`: audited at high importance, mailed at once to every Global
Administrator in force, and shown as a high alert until an administrator closes it with a
justification, having seen everything the account did during the session. Nobody closes the
follow-up of their own emergency session, and nobody closes one while the session may still
be going on, because what the account does next would go unreviewed.

The receivers at the bottom are connected by importing this module (`PimPortalConfig.ready`).
"""

import ipaddress
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from assignments.authz import Grants, deny, grants_for
from assignments.catalog import GLOBAL_ADMINISTRATOR
from assignments.models import Assignment
from audit import log as audit_log
from audit.models import AuditEvent
from pim_portal import jobs, mail, request_context
from pim_portal.actor import Actor
from pim_portal.humanize import when
from pim_portal.middleware import client_ip
from pim_portal.models import EmergencyAccessUse
from pim_portal.params import positive_int

USED = "pim.security.emergency_access_used"
ENDED = "pim.security.emergency_access_ended"
REVIEWED = "pim.security.emergency_access_reviewed"

SESSION_USE_KEY = "pim_emergency_use"  # the id of the session's EmergencyAccessUse
MAIL_TEMPLATE = "pim_portal/mail/emergency_used"
EVENTS_PAGE = 100  # the events of a session shown at once (keyset pages by id)
JUSTIFICATION_MAX = 2000


class FollowUpAlreadyClosed(Exception):
    """Someone else closed the follow-up first: a normal outcome of two administrators."""


# --- Who ------------------------------------------------------------------------------------


def global_administrators(at: datetime | None = None):
    """Active users holding Global Administrator active and in force at `at` (now), directly
    or through a group: the people an emergency sign-in is mailed to."""
    held = Assignment.objects.in_force(at).active().filter(role__name=GLOBAL_ADMINISTRATOR)
    users = held.filter(principal_user__isnull=False).values("principal_user")
    groups = held.filter(principal_group__isnull=False).values("principal_group")
    return (
        get_user_model()
        .objects.filter(Q(pk__in=users) | Q(groups__in=groups), is_active=True)
        .distinct()
    )


def may_set_emergency_access(user) -> bool:
    """Who may mark an account as emergency access (the Django admin asks): a superuser, or
    a Global Administrator in force."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or global_administrators().filter(pk=user.pk).exists()


def may_close(actor, use: EmergencyAccessUse, grants: Grants | None = None) -> bool:
    """A Privileged Role or Global Administrator in force, and not the account itself."""
    actor = Actor.of(actor)
    if not actor.is_system and actor.pk == use.user_id:
        return False
    grants = grants if grants is not None else grants_for(actor)
    return grants.can_manage_directory()


def require_may_close(actor, use: EmergencyAccessUse, grants: Grants | None = None) -> None:
    """Refuse (403, audited, the rule named) whoever may not close the follow-up."""
    actor = Actor.of(actor)
    if not actor.is_system and actor.pk == use.user_id:
        deny(
            actor,
            what="Nobody closes the follow-up of their own emergency access session.",
            target=use,
        )
    if not may_close(actor, use, grants):
        deny(
            actor,
            what="Only a Privileged Role Administrator or Global Administrator closes the "
            "follow-up of an emergency access session.",
            target=use,
        )


# --- The session's window and its events -------------------------------------------------


def _longest_session() -> timedelta:
    """The longest a session can last: the absolute timeout, whose clock starts at the first
    page after the sign-in, which comes within the idle timeout or never."""
    absolute = getattr(settings, "SESSION_ABSOLUTE_TIMEOUT", 10 * 60 * 60)
    return timedelta(seconds=absolute + settings.SESSION_COOKIE_AGE)


def session_end(use: EmergencyAccessUse, now: datetime | None = None) -> datetime:
    """Where the session's window ends: its sign-out; without one, now, but no later than
    the longest a session lasts (one that expired idle records no sign-out)."""
    if use.signed_out_at is not None:
        return use.signed_out_at
    return min(now or timezone.now(), use.signed_in_at + _longest_session())


def _session_alive(session_key: str) -> bool:
    """Whether the session store still holds the session (a missing or expired one loads
    empty; loading creates nothing)."""
    if not session_key:
        return False
    engine = import_module(settings.SESSION_ENGINE)
    return bool(engine.SessionStore(session_key=session_key).load())


def session_may_be_going_on(use: EmergencyAccessUse, now: datetime | None = None) -> bool:
    """No sign-out recorded, within the longest a session lasts, and the session still live."""
    now = now or timezone.now()
    if use.signed_out_at is not None or now >= use.signed_in_at + _longest_session():
        return False
    return _session_alive(use.session_key)


def session_events(use: EmergencyAccessUse, now: datetime | None = None):
    """Everything the account did during the session: the audit events it is the actor of,
    from the sign-in to the end of the window, oldest first (keyset-page them by id)."""
    return AuditEvent.objects.filter(
        actor_id=use.user_id,
        created_at__gte=use.signed_in_at,
        created_at__lte=session_end(use, now),
    ).order_by("id")


def session_events_page(use: EmergencyAccessUse, *, after=None, now=None):
    """(up to EVENTS_PAGE events after the event id `after`, whether more follow)."""
    events = session_events(use, now)
    after = positive_int(after)
    if after:
        events = events.filter(id__gt=after)
    rows = list(events[: EVENTS_PAGE + 1])
    return rows[:EVENTS_PAGE], len(rows) > EVENTS_PAGE


# --- Reads for the pages -------------------------------------------------------------------

OPEN, CLOSED = "open", "closed"
STATUS_FILTERS = ("", OPEN, CLOSED)


def uses_listed(*, status: str = "", user_id: int | None = None):
    """Every use, the open follow-ups first, then newest sign-in first."""
    uses = EmergencyAccessUse.objects.select_related("user", "closed_by").annotate(
        is_closed=ExpressionWrapper(Q(closed_at__isnull=False), output_field=BooleanField())
    )
    if status == OPEN:
        uses = uses.filter(closed_at__isnull=True)
    elif status == CLOSED:
        uses = uses.filter(closed_at__isnull=False)
    if user_id:
        uses = uses.filter(user_id=user_id)
    return uses.order_by("is_closed", "-signed_in_at", "-pk")


def emergency_accounts():
    """The accounts marked as emergency access, and any that were and have uses."""
    return (
        get_user_model()
        .objects.filter(Q(is_emergency_access=True) | Q(emergency_uses__isnull=False))
        .distinct()
        .order_by("display_name", "username")
    )


def require_view_uses(actor, grants: Grants | None = None) -> Grants:
    """Directory viewers see the uses of emergency access; anyone else is refused (403)."""
    grants = grants if grants is not None else grants_for(actor)
    if not grants.can_view_directory():
        deny(actor, what="view the uses of emergency access")
    return grants


def use_for_viewer(actor, use_id, grants: Grants | None = None) -> EmergencyAccessUse:
    """A use the actor may see (directory viewers); a 404, audited, for anyone else, so
    that who used emergency access, and when, does not leak."""
    grants = grants if grants is not None else grants_for(actor)
    pk = positive_int(use_id)
    use = (
        EmergencyAccessUse.objects.select_related("user", "closed_by").filter(pk=pk).first()
        if pk
        else None
    )
    if use is None or not grants.can_view_directory():
        deny(actor, what=f"view emergency access use {use_id}", not_found=True)
    return use


# --- Services --------------------------------------------------------------------------------


def _ip(raw: str | None) -> str | None:
    """The address as the database keeps it; a malformed one is unknown, not an error."""
    try:
        address = ipaddress.ip_address((raw or "").strip())
    except ValueError:
        return None
    return clean_ipv6_address(str(address)) if address.version == 6 else str(address)


SCAN_EMERGENCY_ALERT = "alerts.tasks.scan_emergency_access"


def emergency_use_open(
    *, user, session_key: str = "", ip: str | None = None, at: datetime | None = None
) -> EmergencyAccessUse:
    """Record a sign-in of an emergency access account: the follow-up record, its audit event
    (high importance), and the mail to every Global Administrator, queued with it."""
    at = at or timezone.now()
    with transaction.atomic():
        use = EmergencyAccessUse.objects.create(
            user=user, signed_in_at=at, session_key=(session_key or "")[:40], ip=_ip(ip)
        )
        audit_log.record(
            action=USED,
            actor=user,
            target=use,
            principal=user,
            after={"use": use.pk, "signed_in_at": at, "ip": use.ip, "importance": "high"},
            message=(
                f"HIGH IMPORTANCE: emergency access account {user} signed in"
                f"{f' from {use.ip}' if use.ip else ''}. Every Global Administrator is "
                "mailed; an administrator must close the follow-up with a justification."
            ),
        )
        jobs.enqueue("pim_portal.emergency.mail_administrators", use.pk)
        jobs.enqueue(SCAN_EMERGENCY_ALERT)  # the high alert opens at once
    return use


def emergency_use_sign_out(
    *, user, use_id: int | None = None, session_key: str = "", at: datetime | None = None
) -> EmergencyAccessUse | None:
    """Record the sign-out that ends an emergency session (the use named in the session, else
    the account's open session with this key). Once only: a second sign-out changes nothing."""
    uses = EmergencyAccessUse.objects.filter(user=user, signed_out_at__isnull=True)
    if use_id:
        uses = uses.filter(pk=use_id)
    elif session_key:
        uses = uses.filter(session_key=session_key)
    else:
        return None
    with transaction.atomic():
        use = uses.select_for_update().order_by("-signed_in_at").first()
        if use is None:
            return None
        audit_log.record(
            action=ENDED,
            actor=user,
            target=use,
            principal=user,
            message=f"Emergency access session of {user} ended: signed out.",
        )
        # After the event, so that the window up to the sign-out includes it.
        use.signed_out_at = max(at or timezone.now(), use.signed_in_at)
        use.save(update_fields=["signed_out_at"])
    return use


def emergency_use_close(
    actor, *, use_id: int, justification: str, grants: Grants | None = None
) -> EmergencyAccessUse:
    """Close the follow-up of an emergency session with a justification.

    Rules: a Privileged Role or Global Administrator in force; never the emergency account
    itself; a justification; the session over (signed out, timed out or gone), so that the
    review covers all of it. Two administrators closing at once: one wins, the other gets
    FollowUpAlreadyClosed.
    """
    actor = Actor.of(actor)
    use = use_for_viewer(actor, use_id, grants)
    require_may_close(actor, use, grants)
    justification = (justification or "").strip()
    if not justification:
        raise ValidationError(
            {"justification": "Say why this use of emergency access was justified."}
        )
    now = timezone.now()
    if session_may_be_going_on(use, now):
        raise ValidationError(
            "The session is still going on: close the follow-up once it has ended, so that "
            "the review covers everything the account did."
        )
    with transaction.atomic():
        closed = EmergencyAccessUse.objects.filter(pk=use.pk, closed_at__isnull=True).update(
            closed_at=now, closed_by=actor.user, justification=justification[:JUSTIFICATION_MAX]
        )
        if closed != 1:
            use.refresh_from_db()
            raise FollowUpAlreadyClosed(
                f"{use.closed_by or 'Someone'} already closed this follow-up at "
                f"{when(use.closed_at)}."
            )
        use.refresh_from_db()
        audit_log.record(
            action=REVIEWED,
            actor=actor,
            target=use,
            principal=use.user,
            before={"closed_at": None},
            after={"closed_at": use.closed_at, "justification": use.justification},
            message=(
                f"Follow-up of the emergency access session of {use.user} "
                f"(signed in {when(use.signed_in_at)}) closed: {use.justification}"
            ),
        )
        jobs.enqueue(SCAN_EMERGENCY_ALERT)  # its alert resolves at once
    return use


# --- Task -------------------------------------------------------------------------------------


def mail_administrators(use_id: int) -> int:
    """Mail every Global Administrator in force about one emergency sign-in (the task
    `emergency_use_open` queues). How many mails went out."""
    use = EmergencyAccessUse.objects.select_related("user").filter(pk=use_id).first()
    if use is None:
        return 0
    recipients = global_administrators().exclude(email="").values_list("email", flat=True)
    return mail.send_templated_mail(
        template=MAIL_TEMPLATE,
        recipients=list(recipients),
        context={
            "use": use,
            "account": use.user,
            "link": mail.absolute_url(reverse("emergency:use_detail", args=[use.pk])),
        },
    )


# --- Receivers ------------------------------------------------------------------------------


def _request_ip(request) -> str | None:
    ip = request_context.current().ip
    if ip is None and request is not None and hasattr(request, "META"):
        ip = client_ip(request)
    return ip


@receiver(user_logged_in, dispatch_uid="pim_portal.emergency.record_emergency_sign_in")
def record_emergency_sign_in(sender, request=None, user=None, **kwargs):
    if user is None or not getattr(user, "is_emergency_access", False):
        return
    session = getattr(request, "session", None)
    use = emergency_use_open(
        user=user,
        session_key=getattr(session, "session_key", None) or "",
        ip=_request_ip(request),
    )
    if session is not None:
        session[SESSION_USE_KEY] = use.pk  # survives a new session key (a password change)


@receiver(user_logged_out, dispatch_uid="pim_portal.emergency.record_emergency_sign_out")
def record_emergency_sign_out(sender, request=None, user=None, **kwargs):
    if user is None:
        return
    session = getattr(request, "session", None)
    use_id = session.get(SESSION_USE_KEY) if session is not None else None
    if use_id is None and not getattr(user, "is_emergency_access", False):
        return
    emergency_use_sign_out(
        user=user,
        use_id=positive_int(use_id),
        session_key=getattr(session, "session_key", None) or "",
    )

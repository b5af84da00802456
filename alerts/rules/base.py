"""The shape of a rule and what every rule shares: the privileged roles, findings, labels.

A rule reads the data with a fixed number of set-based queries, however many users and
assignments there are, and returns its findings; the scan (`alerts.services.scan`) turns
findings into alerts.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q
from django.urls import NoReverseMatch, reverse

from assignments.catalog import GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR
from assignments.models import Assignment, AssignmentKind, RoleKind, RoleRequest, Scope
from assignments.notifications import role_page

# The directory roles that alerts treat as privileged: they can hand out access, change
# security settings, or take over other accounts. The one place the list lives.
PRIVILEGED_DIRECTORY_ROLES = (
    GLOBAL_ADMINISTRATOR,
    PRIVILEGED_ROLE_ADMINISTRATOR,
    "Security Administrator",
    "User Administrator",
    "Application Administrator",
)
OWNER = "Owner"

# How many affected items an alert keeps (its count says how many there are in all).
AFFECTED_LIMIT = 500

DIRECTORY = "directory"
RESOURCES = "resources"


@dataclass(frozen=True)
class Threshold:
    """A number a rule's settings can change, with its default and allowed range."""

    label: str
    default: int
    minimum: int
    maximum: int
    unit: str = ""


@dataclass
class Finding:
    """What a rule found about one subject (`key`: "" for a rule that finds one thing, a
    scope id for a rule that finds one per scope, ...)."""

    key: str
    title: str
    description: str
    affected: list[dict] = field(default_factory=list)
    total: int | None = None  # how many are affected, when `affected` is cut at the limit

    @property
    def affected_count(self) -> int:
        return len(self.affected) if self.total is None else self.total


@dataclass(frozen=True)
class Remediation:
    """The action an alert's page offers: `run(actor, alert)` does it through the services
    (which check the actor themselves) and returns the message to show."""

    label: str
    confirm_text: str
    run: Callable


@dataclass(frozen=True)
class Rule:
    kind: str
    title: str
    severity: str
    description: str
    how_to_fix: str
    evaluate: Callable[[dict, datetime], list[Finding]]
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    scope: str = DIRECTORY  # "directory": directory viewers; "resources": per scope
    remediation: Remediation | None = None

    def defaults(self) -> dict[str, int]:
        return {name: threshold.default for name, threshold in self.thresholds.items()}


# --- Shared reads --------------------------------------------------------------------------


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def item(label: str, url: str = "", pk=None) -> dict:
    return {"label": label, "url": url, "id": pk}


def safe_reverse(name: str, *args) -> str:
    """A page's address, or "" while the page does not exist (yet)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def role_url(role_id: int) -> str:
    """A directory role's page (its members)."""
    return reverse("assignments:role_detail", args=[role_id])


def cut(rows) -> tuple[list, int | None]:
    """At most AFFECTED_LIMIT rows (one query); the total only when there are more (another)."""
    kept = list(rows[: AFFECTED_LIMIT + 1])
    if len(kept) <= AFFECTED_LIMIT:
        return kept, None
    return kept[:AFFECTED_LIMIT], rows.count()


def assignment_label(assignment: Assignment, *, with_scope: bool = False) -> str:
    kind = "eligible" if assignment.kind == AssignmentKind.ELIGIBLE else "active"
    lasting = ", permanent" if assignment.end is None else ""
    where = f" at {assignment.scope}" if with_scope else ""
    return f"{assignment.principal_name}: {assignment.role} ({kind}{lasting}){where}"


def assignment_item(assignment: Assignment, *, with_scope: bool = False) -> dict:
    return item(
        assignment_label(assignment, with_scope=with_scope),
        role_page(assignment.role, assignment.scope),
        assignment.pk,
    )


def with_labels(assignments):
    """Only the columns an assignment's label and link need."""
    return assignments.select_related("principal_user", "principal_group", "role", "scope")


def directory_assignments(now: datetime, names=PRIVILEGED_DIRECTORY_ROLES):
    """Assignments in force now of the named directory roles."""
    return Assignment.objects.in_force(now).filter(
        role__kind=RoleKind.DIRECTORY, role__name__in=names
    )


def made_outside_pim(assignments):
    """The assignments no request made (nor later changed): written through the Django admin
    or the database directly. Every service that makes an assignment makes its request too
    (admin_assign, an activation, a renewal), pointing at it as `result_assignment`."""
    made = RoleRequest.objects.filter(result_assignment=OuterRef("pk"))
    changed = RoleRequest.objects.filter(target_assignment=OuterRef("pk"))
    return assignments.filter(~Exists(made), ~Exists(changed))


def not_emergency_access():
    """Emergency access accounts are meant to hold standing, unused access: their use is what
    the emergency access alert watches. Their ids first (a handful): a join to every user to
    read the flag made PostgreSQL hash ten thousand users for each count."""
    accounts = list(
        get_user_model()
        .objects.filter(is_emergency_access=True)
        .order_by()
        .values_list("pk", flat=True)
    )
    return ~Q(principal_user_id__in=accounts) if accounts else Q()


def scope_label(scope: Scope) -> str:
    return f"{scope} ({scope.path})"

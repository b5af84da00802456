"""Checking an assignment or an activation against the effective role settings.

Each function returns the list of every rule broken, each as a sentence a person can act on
that also knows which form field it is about (`Problem.field`), so pages show it there.
"""

from datetime import datetime, timedelta

from assignments.models import MINIMUM_DURATION, AssignmentKind, RolePolicy
from pim_portal.humanize import duration_words

# A start this far in the past is taken as "now" (the form took a moment to fill in).
START_TOLERANCE = timedelta(minutes=5)
MAX_ACTIVATION_LEAD = timedelta(days=30)
# A user may ask to extend their own assignment this close to its end, and to renew it this
# long after it ended.
EXTEND_WINDOW = timedelta(days=14)
RENEW_WINDOW = timedelta(days=30)


class Problem(str):
    """A broken rule: its sentence, and the field it is about (None: the whole request)."""

    field: str | None

    def __new__(cls, message: str, field: str | None = None):
        problem = super().__new__(cls, message)
        problem.field = field
        return problem


def by_field(problems: list[str]) -> dict[str, list[str]]:
    """{field or "__all__": [sentences]}: what `ValidationError(dict)` and forms take."""
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        grouped.setdefault(getattr(problem, "field", None) or "__all__", []).append(str(problem))
    return grouped


def problems_of(error) -> list[Problem]:
    """The sentences of a ValidationError, each with its field (from a dict error)."""
    if hasattr(error, "error_dict"):
        return [
            Problem(message, None if field == "__all__" else field)
            for field, errors in error.message_dict.items()
            for message in errors
        ]
    return [Problem(message) for message in error.messages]


def normalise_start(start: datetime | None, now: datetime) -> datetime:
    """No start, or one a moment ago (the form took a while), means now."""
    if start is None or (now - START_TOLERANCE <= start < now):
        return now
    return start


def assignment_problems(
    *,
    policy: RolePolicy,
    kind: str,
    start: datetime,
    end: datetime | None,
    justification: str,
    now: datetime,
) -> list[str]:
    problems = []
    kind_label = "eligible" if kind == AssignmentKind.ELIGIBLE else "active"
    if start < now - START_TOLERANCE:
        problems.append("The start cannot be in the past.")
    if end is None:
        if not policy.allows_permanent(kind):
            limit = policy.max_assignment_duration(kind)
            problems.append(
                f"Permanent {kind_label} assignments are not allowed for {policy.role}: "
                f"set an end at most {duration_words(limit)} after the start."
            )
    else:
        length = end - max(start, now)
        limit = policy.max_assignment_duration(kind)
        if end <= start:
            problems.append("The end must be after the start.")
        elif length < MINIMUM_DURATION:
            problems.append("An assignment must last at least 5 minutes.")
        elif limit is not None and end - start > limit:
            problems.append(
                f"The settings of {policy.role} allow {kind_label} assignments of at most "
                f"{duration_words(limit)}."
            )
    if (
        kind == AssignmentKind.ACTIVE
        and policy.require_justification_on_active_assignment
        and not justification.strip()
    ):
        problems.append(f"A justification is required for active assignments of {policy.role}.")
    return problems


def activation_problems(
    *,
    policy: RolePolicy,
    start: datetime,
    duration: timedelta,
    justification: str,
    ticket_number: str,
    ticket_system: str,
    now: datetime,
) -> list[str]:
    problems = []
    if start < now - START_TOLERANCE:
        problems.append(Problem("The start cannot be in the past.", "start"))
    elif start > now + MAX_ACTIVATION_LEAD:
        problems.append(Problem("The start can be at most 30 days ahead.", "start"))
    if duration < MINIMUM_DURATION:
        problems.append(Problem("An activation must last at least 5 minutes.", "duration_hours"))
    elif duration > policy.activation_max_duration:
        problems.append(
            Problem(
                f"The settings of {policy.role} allow activations of at most "
                f"{duration_words(policy.activation_max_duration)}.",
                "duration_hours",
            )
        )
    if policy.require_justification_on_activation and not justification.strip():
        problems.append(
            Problem(f"A justification is required to activate {policy.role}.", "justification")
        )
    if policy.require_ticket_on_activation and not (
        ticket_number.strip() and ticket_system.strip()
    ):
        field = "ticket_system" if ticket_number.strip() else "ticket_number"
        problems.append(
            Problem(
                f"A ticket number and ticket system are required to activate {policy.role}.",
                field,
            )
        )
    return problems

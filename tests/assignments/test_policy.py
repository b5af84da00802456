"""Every rule of assignments.policy: each broken rule yields one message a person can act on."""

from datetime import UTC, datetime, timedelta

import pytest

from assignments.models import AssignmentKind, RolePolicy
from assignments.policy import activation_problems, assignment_problems
from tests.factories import role

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy():
    return RolePolicy.objects.effective_for(role("Privileged Role Administrator"))


def _assignment(policy, **kw):
    values = {
        "kind": AssignmentKind.ELIGIBLE,
        "start": NOW,
        "end": NOW + timedelta(days=30),
        "justification": "Needed for the migration project",
        "now": NOW,
    }
    values.update(kw)
    return assignment_problems(policy=policy, **values)


def _activation(policy, **kw):
    values = {
        "start": NOW,
        "duration": timedelta(hours=2),
        "justification": "Incident 42",
        "ticket_number": "",
        "ticket_system": "",
        "now": NOW,
    }
    values.update(kw)
    return activation_problems(policy=policy, **values)


# assignment_problems -------------------------------------------------------------------------


def test_valid_eligible_assignment_has_no_problems(policy):
    assert _assignment(policy) == []


def test_valid_active_assignment_has_no_problems(policy):
    assert _assignment(policy, kind=AssignmentKind.ACTIVE) == []


def test_permanent_eligible_not_allowed(policy):
    problems = _assignment(policy, end=None)
    assert len(problems) == 1
    assert "Permanent eligible assignments are not allowed" in problems[0]
    assert "365 days" in problems[0]


def test_permanent_active_not_allowed(policy):
    problems = _assignment(policy, kind=AssignmentKind.ACTIVE, end=None)
    assert len(problems) == 1
    assert "Permanent active assignments are not allowed" in problems[0]
    assert "180 days" in problems[0]


def test_permanent_allowed_when_settings_allow_it(policy):
    policy.allow_permanent_eligible = True
    assert _assignment(policy, end=None) == []


def test_eligible_longer_than_allowed(policy):
    problems = _assignment(policy, end=NOW + timedelta(days=365, seconds=1))
    assert problems == [
        "The settings of Privileged Role Administrator allow eligible assignments of at most "
        "365 days."
    ]


def test_eligible_exactly_as_long_as_allowed_is_accepted(policy):
    assert _assignment(policy, end=NOW + timedelta(days=365)) == []


def test_active_longer_than_allowed(policy):
    problems = _assignment(
        policy, kind=AssignmentKind.ACTIVE, end=NOW + timedelta(days=180, minutes=1)
    )
    assert len(problems) == 1
    assert "active assignments of at most 180 days" in problems[0]


def test_longer_than_allowed_counts_from_a_future_start(policy):
    start = NOW + timedelta(days=10)
    assert _assignment(policy, start=start, end=start + timedelta(days=365)) == []
    assert len(_assignment(policy, start=start, end=start + timedelta(days=366))) == 1


def test_shorter_than_5_minutes(policy):
    problems = _assignment(policy, end=NOW + timedelta(minutes=4, seconds=59))
    assert problems == ["An assignment must last at least 5 minutes."]


def test_exactly_5_minutes_is_accepted(policy):
    assert _assignment(policy, end=NOW + timedelta(minutes=5)) == []


def test_end_before_start(policy):
    start = NOW + timedelta(days=2)
    problems = _assignment(policy, start=start, end=start - timedelta(hours=1))
    assert problems == ["The end must be after the start."]


def test_end_equal_to_start(policy):
    start = NOW + timedelta(days=2)
    assert _assignment(policy, start=start, end=start) == ["The end must be after the start."]


def test_justification_missing_on_active_assignment(policy):
    problems = _assignment(policy, kind=AssignmentKind.ACTIVE, justification="   ")
    assert problems == [
        "A justification is required for active assignments of Privileged Role Administrator."
    ]


def test_justification_not_needed_when_settings_say_so(policy):
    policy.require_justification_on_active_assignment = False
    assert _assignment(policy, kind=AssignmentKind.ACTIVE, justification="") == []


def test_justification_not_needed_for_eligible_assignment(policy):
    assert _assignment(policy, justification="") == []


def test_start_in_the_past(policy):
    start = NOW - timedelta(minutes=5, seconds=1)
    problems = _assignment(policy, start=start, end=NOW + timedelta(days=1))
    assert problems == ["The start cannot be in the past."]


def test_start_a_moment_ago_is_tolerated(policy):
    start = NOW - timedelta(minutes=4)
    assert _assignment(policy, start=start, end=NOW + timedelta(days=1)) == []


def test_every_broken_rule_is_listed(policy):
    problems = _assignment(
        policy,
        kind=AssignmentKind.ACTIVE,
        start=NOW - timedelta(days=1),
        end=None,
        justification="",
    )
    assert len(problems) == 3


# activation_problems -------------------------------------------------------------------------


def test_valid_activation_has_no_problems(policy):
    assert _activation(policy) == []


def test_activation_longer_than_allowed(policy):
    problems = _activation(policy, duration=timedelta(hours=8, minutes=1))
    assert problems == [
        "The settings of Privileged Role Administrator allow activations of at most 8 hours."
    ]


def test_activation_of_exactly_the_maximum_is_accepted(policy):
    assert _activation(policy, duration=timedelta(hours=8)) == []


def test_activation_shorter_than_5_minutes(policy):
    problems = _activation(policy, duration=timedelta(minutes=4))
    assert problems == ["An activation must last at least 5 minutes."]


def test_activation_justification_missing(policy):
    problems = _activation(policy, justification=" ")
    assert problems == ["A justification is required to activate Privileged Role Administrator."]


def test_activation_justification_optional_when_settings_say_so(policy):
    policy.require_justification_on_activation = False
    assert _activation(policy, justification="") == []


def test_activation_start_in_the_past(policy):
    problems = _activation(policy, start=NOW - timedelta(minutes=6))
    assert problems == ["The start cannot be in the past."]


def test_activation_start_more_than_30_days_ahead(policy):
    problems = _activation(policy, start=NOW + timedelta(days=30, minutes=1))
    assert problems == ["The start can be at most 30 days ahead."]


def test_activation_start_30_days_ahead_is_accepted(policy):
    assert _activation(policy, start=NOW + timedelta(days=30)) == []


def test_activation_ticket_missing(policy):
    policy.require_ticket_on_activation = True
    problems = _activation(policy)
    assert problems == [
        "A ticket number and ticket system are required to activate Privileged Role Administrator."
    ]


def test_activation_ticket_system_missing(policy):
    policy.require_ticket_on_activation = True
    assert len(_activation(policy, ticket_number="INC-1", ticket_system=" ")) == 1


def test_activation_with_ticket_is_accepted(policy):
    policy.require_ticket_on_activation = True
    assert _activation(policy, ticket_number="INC-1", ticket_system="ServiceNow") == []


def test_activation_lists_every_broken_rule(policy):
    policy.require_ticket_on_activation = True
    problems = _activation(
        policy, start=NOW - timedelta(hours=1), duration=timedelta(hours=9), justification=""
    )
    assert len(problems) == 4

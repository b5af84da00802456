"""The weekly digest: who receives it, what it says about the last seven days, and that a week
is sent once however often the task runs."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from django_q.models import Schedule

from alerts.models import Alert, AlertStatus, Severity
from assignments import services
from assignments.models import AssignmentKind
from audit.models import AuditEvent
from pim_portal import digest
from tests.assignments.activation_support import activate, relax
from tests.concurrency import race
from tests.factories import assign, make_group, make_user, role

pytestmark = pytest.mark.django_db

PRA = "Privileged Role Administrator"
GA = "Global Administrator"
MONDAY = datetime(2026, 1, 12, 7, 0, tzinfo=UTC)  # ISO week 2026-W03


@pytest.fixture
def clock():
    """Ten days before MONDAY (the personas are made then); each test moves it on."""
    with time_machine.travel(MONDAY - timedelta(days=10), tick=False) as traveller:
        yield traveller


def send():
    return digest.send_weekly_digest()


# --- Who receives it -------------------------------------------------------------------------


def test_the_digest_goes_to_global_and_privileged_role_administrators(
    clock, pra, global_admin, security_reader, eligible_user
):
    member = make_user("gwen")
    assign(make_group("admins", member), PRA, permanent=True)
    assign(make_user("nomail", email=""), GA, permanent=True)
    send()
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [pra.email, global_admin.email, member.email]
    )


def test_an_administrator_whose_role_ended_gets_no_digest(clock, pra):
    clock.move_to(MONDAY)
    former = make_user("former")
    assign(former, GA, start=MONDAY - timedelta(days=30), end=MONDAY - timedelta(days=1))
    send()
    assert [m.to for m in mail.outbox] == [[pra.email]]


# --- What it says ----------------------------------------------------------------------------


def test_the_digest_counts_the_activations_of_the_last_seven_days(clock, pra, eligible_user):
    relax(PRA)
    clock.move_to(MONDAY - timedelta(days=8))
    activate(eligible_user)  # before the week: not counted
    clock.move_to(MONDAY - timedelta(days=2))
    activate(eligible_user)
    clock.move_to(MONDAY)
    made = digest.digest_for()
    assert (made.activations, made.activations_by_role) == (1, [(PRA, 1)])
    send()
    assert "ACTIVATIONS: 1" in mail.outbox[0].body
    assert f"- {PRA}: 1" in mail.outbox[0].body


def test_the_digest_lists_new_permanent_assignments(clock, pra):
    clock.move_to(MONDAY - timedelta(days=1))
    newcomer = make_user("newcomer", display_name="Nina Newcomer")
    assign(newcomer, "Security Reader", permanent=True)
    assign(make_user("timebound"), "Security Reader")
    clock.move_to(MONDAY)
    made = digest.digest_for()
    assert [a.principal_user for a in made.new_permanent.rows] == [newcomer]
    send()
    assert "NEW PERMANENT ASSIGNMENTS: 1" in mail.outbox[0].body
    assert "Nina Newcomer: Security Reader (active)" in mail.outbox[0].body


def test_the_digest_lists_assignments_made_outside_pim(clock, pra):
    clock.move_to(MONDAY - timedelta(days=1))
    backdoor = assign(make_user("backdoor"), GA)  # written directly: no request made it
    relax("Security Reader")
    services.assignment_create(
        actor=pra,
        principals=[make_user("proper")],
        role=role("Security Reader"),
        scope=None,
        kind=AssignmentKind.ELIGIBLE,
        end=timezone.now() + timedelta(days=30),
        justification="Audit season",
    )
    clock.move_to(MONDAY)
    made = digest.digest_for()
    assert made.outside_pim.rows == [backdoor]
    send()
    assert "ASSIGNMENTS MADE OUTSIDE PIM (no request made them" in mail.outbox[0].body
    assert "Backdoor: Global Administrator (active)" in mail.outbox[0].body


def test_the_digest_counts_alerts_opened_and_resolved(clock, pra):
    clock.move_to(MONDAY)
    old = Alert.objects.create(
        kind="old",
        severity=Severity.LOW,
        title="Old finding",
        opened_at=MONDAY - timedelta(days=20),
    )
    Alert.objects.filter(pk=old.pk).update(
        status=AlertStatus.RESOLVED,
        resolved_at=MONDAY - timedelta(days=1),
        resolved_by_name="Pat Admin",
    )
    Alert.objects.create(
        kind="new",
        severity=Severity.HIGH,
        title="New finding",
        opened_at=MONDAY - timedelta(days=3),
    )
    made = digest.digest_for()
    assert (made.alerts_opened.count, made.alerts_resolved.count) == (1, 1)
    send()
    body = mail.outbox[0].body
    assert "[High] New finding" in body and "[Low] Old finding" in body and "by Pat Admin" in body


def test_a_quiet_week_says_so(clock, pra):
    clock.move_to(MONDAY)
    send()
    assert "A quiet week" in mail.outbox[0].body
    assert mail.outbox[0].subject == "PIM weekly digest (2026-W03): 0 activations"


def test_the_digest_is_html_too(clock, pra):
    clock.move_to(MONDAY)
    send()
    html, kind = mail.outbox[0].alternatives[0]
    assert kind == "text/html" and '<th align="left">Activations</th><td>0</td>' in html


def test_a_long_section_lists_twenty_and_says_how_many_in_all(clock, pra):
    clock.move_to(MONDAY - timedelta(days=1))
    for number in range(digest.LISTED + 3):
        assign(make_user(f"perm{number}"), "Reader", permanent=True)
    clock.move_to(MONDAY)
    made = digest.digest_for()
    # Pat's own permanent PRA is from before the week.
    assert (len(made.new_permanent.rows), made.new_permanent.count) == (20, 23)


# --- Once a week -----------------------------------------------------------------------------


def test_the_digest_is_sent_once_per_week(clock, pra):
    clock.move_to(MONDAY)
    assert send()["sent"] == 1
    clock.move_to(MONDAY + timedelta(days=2))
    assert send() == {"week": "2026-W03", "sent": 0, "already_sent": True}
    assert len(mail.outbox) == 1
    event = AuditEvent.objects.get(action=digest.SENT_ACTION)
    assert (event.message, event.actor_name) == ("2026-W03", "system (weekly digest)")
    assert event.after["recipients"] == 1


def test_the_next_week_is_sent_again(clock, pra):
    clock.move_to(MONDAY)
    send()
    clock.move_to(MONDAY + timedelta(days=7))
    assert send()["sent"] == 1
    assert AuditEvent.objects.filter(action=digest.SENT_ACTION).count() == 2


def test_the_week_is_the_portals_own(settings):
    settings.TIME_ZONE = "Pacific/Auckland"
    # Sunday 18:30 UTC is already Monday of the next ISO week in Auckland.
    assert digest.week_of(datetime(2026, 1, 11, 18, 30, tzinfo=UTC)) == "2026-W03"


# --- The schedule ----------------------------------------------------------------------------


def test_migrate_creates_a_weekly_schedule(db):
    Schedule.objects.filter(name=digest.DIGEST_SCHEDULE).delete()
    digest.ensure_periodic_schedules()
    schedule = Schedule.objects.get(name=digest.DIGEST_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "pim_portal.digest.send_weekly_digest",
        Schedule.WEEKLY,
        -1,
    )


def test_the_schedule_keeps_its_next_run_on_a_later_migrate(db):
    Schedule.objects.filter(name=digest.DIGEST_SCHEDULE).delete()
    digest.ensure_periodic_schedules()
    first = Schedule.objects.get(name=digest.DIGEST_SCHEDULE).next_run
    with time_machine.travel(first - timedelta(days=2)):
        digest.ensure_periodic_schedules()
    assert Schedule.objects.get(name=digest.DIGEST_SCHEDULE).next_run == first


def test_the_digest_goes_out_on_monday_morning(settings):
    settings.TIME_ZONE = "Europe/Paris"
    wednesday = datetime(2026, 1, 14, 9, 0, tzinfo=UTC)
    at = digest.next_digest_time(wednesday)
    local = timezone.localtime(at, timezone.get_default_timezone())
    assert (local.date().isoformat(), local.hour, local.minute) == ("2026-01-19", 7, 0)


def test_the_digest_due_now_is_next_week_once_passed(settings):
    settings.TIME_ZONE = "UTC"
    assert digest.next_digest_time(MONDAY) == MONDAY + timedelta(days=7)


def test_the_schedule_goes_when_the_digest_is_switched_off(settings):
    digest.ensure_periodic_schedules()
    settings.PIM_WEEKLY_DIGEST = False
    digest.ensure_periodic_schedules()
    assert not Schedule.objects.filter(name=digest.DIGEST_SCHEDULE).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_at_once_send_the_week_once(pra):
    digest.ensure_periodic_schedules()
    results = race(digest.send_weekly_digest, digest.send_weekly_digest)
    assert sorted(result["already_sent"] for result in results) == [False, True]
    assert len(mail.outbox) == 1
    assert AuditEvent.objects.filter(action=digest.SENT_ACTION).count() == 1

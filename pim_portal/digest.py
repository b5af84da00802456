"""The weekly digest: one mail a week to the directory's administrators (Global and Privileged
Role Administrators, active and in force) with what happened to privileged access in the last
seven days: activations, new permanent assignments, assignments made outside PIM, and security
alerts opened and resolved.

A django-q2 schedule runs `send_weekly_digest` every week (`ensure_periodic_schedules`, after
migrate). It is sent once per ISO week: the audit event `pim.digest.sent`, whose message is the
week ("2026-W49"), is written before the mails go, and a week that has one is not sent again,
whoever runs the task (a retry, a second worker, a run by hand).
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from alerts.models import Alert
from assignments import authz
from assignments.models import Assignment
from audit import log as audit_log
from audit.models import AuditEvent
from pim_portal import insights
from pim_portal.actor import Actor
from pim_portal.mail import absolute_url, send_templated_mail

DIGEST_SCHEDULE = "pim: weekly digest"
TASK = "pim_portal.digest.send_weekly_digest"
SENT_ACTION = "pim.digest.sent"
ACTOR = Actor.system("weekly digest")
WINDOW = timedelta(days=7)
LISTED = 20  # rows listed per section; the count says how many there are in all
# When the digest goes out: Monday morning in the portal's time zone (settings.TIME_ZONE).
DIGEST_WEEKDAY = 0
DIGEST_TIME = time(7, 0)


@dataclass
class Section:
    """Some rows (at most LISTED) and how many there are in all."""

    rows: list = field(default_factory=list)
    count: int = 0


@dataclass
class Digest:
    week: str
    since: datetime
    until: datetime
    activations: int = 0
    activations_by_role: list[tuple[str, int]] = field(default_factory=list)
    new_permanent: Section = field(default_factory=Section)
    outside_pim: Section = field(default_factory=Section)
    alerts_opened: Section = field(default_factory=Section)
    alerts_resolved: Section = field(default_factory=Section)

    @property
    def is_quiet(self) -> bool:
        return not (
            self.activations
            or self.new_permanent.count
            or self.outside_pim.count
            or self.alerts_opened.count
            or self.alerts_resolved.count
        )

    def summary(self) -> dict:
        return {
            "activations": self.activations,
            "new_permanent": self.new_permanent.count,
            "outside_pim": self.outside_pim.count,
            "alerts_opened": self.alerts_opened.count,
            "alerts_resolved": self.alerts_resolved.count,
        }


def week_of(now: datetime) -> str:
    """The ISO week `now` falls in, in the portal's time zone: '2026-W49'."""
    year, week, _ = timezone.localtime(now, timezone.get_default_timezone()).isocalendar()
    return f"{year}-W{week:02d}"


def _section(rows) -> Section:
    listed = list(rows[: LISTED + 1])
    if len(listed) <= LISTED:
        return Section(rows=listed, count=len(listed))
    return Section(rows=listed[:LISTED], count=rows.count())


def digest_for(now: datetime | None = None) -> Digest:
    """What happened in the seven days before `now`: a fixed number of queries."""
    now = now or timezone.now()
    since = now - WINDOW
    digest = Digest(week=week_of(now), since=since, until=now)
    by_role = (
        insights.activations()
        .filter(start__gte=since, start__lt=now)
        .order_by()
        .values_list("role__name")
        .annotate(n=Count("pk"))
    )
    digest.activations_by_role = sorted(by_role, key=lambda row: (-row[1], row[0]))
    digest.activations = sum(n for _, n in digest.activations_by_role)
    made = (
        Assignment.objects.filter(created_at__gte=since, created_at__lt=now)
        .select_related("principal_user", "principal_group", "role", "scope", "created_by")
        .order_by("-created_at", "-pk")
    )
    digest.new_permanent = _section(made.filter(end__isnull=True, activated_from__isnull=True))
    digest.outside_pim = _section(insights.outside_pim(made))
    digest.alerts_opened = _section(
        Alert.objects.filter(opened_at__gte=since, opened_at__lt=now).order_by("-opened_at", "-pk")
    )
    digest.alerts_resolved = _section(
        Alert.objects.filter(resolved_at__gte=since, resolved_at__lt=now).order_by(
            "-resolved_at", "-pk"
        )
    )
    return digest


def recipients() -> list[str]:
    return sorted(
        {user.email for user in authz.directory_administrators().only("email") if user.email}
    )


def send_weekly_digest() -> dict:
    """Send this week's digest unless it was sent already (the django-q2 task)."""
    now = timezone.now()
    week = week_of(now)
    with transaction.atomic():
        # Two workers running the task at once: the second waits here, then sees the event.
        Schedule.objects.select_for_update().filter(name=DIGEST_SCHEDULE).first()
        if AuditEvent.objects.filter(action=SENT_ACTION, message=week).exists():
            return {"week": week, "sent": 0, "already_sent": True}
        addresses = recipients()
        digest = digest_for(now)
        audit_log.record(
            action=SENT_ACTION,
            actor=ACTOR,
            message=week,
            after={**digest.summary(), "recipients": len(addresses)},
        )
    # After the commit: a crash here loses this week's mail rather than sending it twice.
    sent = send_templated_mail(
        template="pim_portal/mail/digest",
        recipients=addresses,
        context={
            "digest": digest,
            "dashboard_link": absolute_url(reverse("dashboard")),
            "alerts_link": absolute_url(reverse("alerts:alert_list")),
        },
    )
    return {"week": week, "sent": sent, "already_sent": False}


def next_digest_time(now: datetime | None = None) -> datetime:
    """The next Monday 07:00 in the portal's time zone, after `now`."""
    zone = timezone.get_default_timezone()
    local = timezone.localtime(now or timezone.now(), zone)
    day = local.date() + timedelta(days=(DIGEST_WEEKDAY - local.weekday()) % 7)
    at = timezone.make_aware(datetime.combine(day, DIGEST_TIME), zone)
    if at <= local:
        at = timezone.make_aware(datetime.combine(day + timedelta(days=7), DIGEST_TIME), zone)
    return at


def ensure_periodic_schedules(**kwargs) -> None:
    """Create the weekly schedule once (called after migrate); a later migrate keeps its next
    run, so redeploying does not move the digest's day."""
    if not getattr(settings, "PIM_WEEKLY_DIGEST", True):
        Schedule.objects.filter(name=DIGEST_SCHEDULE).delete()
        return
    wanted = {"func": TASK, "schedule_type": Schedule.WEEKLY, "repeats": -1}
    schedule, made = Schedule.objects.get_or_create(
        name=DIGEST_SCHEDULE, defaults={**wanted, "next_run": next_digest_time()}
    )
    if not made and any(getattr(schedule, name) != value for name, value in wanted.items()):
        for name, value in wanted.items():
            setattr(schedule, name, value)
        schedule.save(update_fields=list(wanted))

"""The home page. Administrators and readers of the directory see the state of privileged
access (alerts, people per role, approvals and reviews waiting, activations per day, standing
access); resource administrators see what they may see of the resource roles; people who
administer nothing see their own roles, requests, approvals and reviews.

A fixed number of grouped queries whatever the number of users, roles or assignments (the
reads are in pim_portal.insights). The aggregates over every assignment (people per role,
assignments by type, activations per day) are kept for a minute (`_counted`): at 100,000
assignments they cost about 150 ms together, too much for every load. The directory's
insights are kept drawn until what they show changes (`_directory_part`), and the viewer's own
counts until one of their roles starts or ends (`_my_counts`). The charts are SVG drawn here:
no script, no library.

Standing access is changed in bulk by `standing_access_change`, for directory administrators,
through the assignments services (which audit each change).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Layout
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Case, Count, IntegerField, Max, Min, Q, Value, When
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from alerts.models import SEVERITY_ORDER, Alert, AlertSetting, Severity
from alerts.services import effective_thresholds
from assignments import counts, services
from assignments.authz import deny, request_grants
from assignments.models import ROOT_PATH, Assignment, AssignmentKind, RoleRequest
from assignments.queries import attach_people
from assignments.services.standing import standing_make_eligible_many
from audit.models import AuditEvent
from pim_portal import insights
from pim_portal.params import positive_int
from reviews.models import ReviewInstance
from reviews.queries import reviewer_inbox

RECENT_EVENTS = 10
OWN_ROLES = 10  # the viewer's own roles listed on their view (the rest: My roles)
OWN_REQUESTS = 5
TOP_ALERTS = 5
STANDING_PAGE_SIZE = 25
CHART_ROLES = 5  # roles with a colour of their own in the activation charts; the rest: "Other"
GLOBAL_ADMIN_ALERT = "too_many_global_admins"  # the alert rule whose thresholds the page shows

# Bootstrap's palette, so the charts match the badges; the last is "Other roles".
PALETTE = ["#0d6efd", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#6c757d"]
SEVERITY_COLOURS = {Severity.HIGH: "danger", Severity.MEDIUM: "warning", Severity.LOW: "info"}


# --- Charts: server-drawn SVG ----------------------------------------------------------------


@dataclass
class Segment:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str
    count: int


@dataclass
class DayBar:
    day: date
    total: int
    segments: list[Segment] = field(default_factory=list)
    label: str = ""  # the date under the bar, on a few bars only
    label_x: float = 0.0


@dataclass
class Series:
    key: object  # a role id, or "other"
    label: str
    colour: str


@dataclass
class BarChart:
    title: str
    days: list[DayBar]
    series: list[Series]
    y_max: int
    total: int
    chart_id: str = ""
    width: int = 600
    height: int = 180
    left: int = 32  # room for the y axis labels
    right: int = 18  # room for the last date's label
    bottom: int = 22  # room for the dates

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @cached_property
    def svg(self) -> str:
        """The chart as inline SVG (drawn here rather than in a template: a month of stacked
        bars is a few hundred elements, and the template language took tens of ms for them).
        Presentation attributes only: the CSP allows no inline style."""
        days = format_html_join("", "{}", ((_day_svg(self, bar),) for bar in self.days))
        return format_html(
            '<svg class="d-block w-100 mb-3" viewBox="0 0 {w} {h}" role="img" '
            'aria-label="{title}: {total} activations" data-chart="{id}">'
            '<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#adb5bd"/>'
            '<line x1="{left}" y1="8" x2="{right}" y2="8" stroke="#dee2e6" '
            'stroke-dasharray="3 3"/>'
            '<text x="{label_x}" y="12" font-size="11" text-anchor="end" '
            'fill="currentColor">{y_max}</text>'
            '<text x="{label_x}" y="{bottom}" font-size="11" text-anchor="end" '
            'fill="currentColor">0</text>{days}</svg>',
            w=self.width,
            h=self.height,
            title=self.title,
            total=self.total,
            id=self.chart_id,
            left=self.left,
            right=self.plot_right,
            bottom=self.plot_bottom,
            label_x=self.left - 4,
            y_max=self.y_max,
            days=days,
        )


def _day_svg(chart: BarChart, bar: DayBar) -> str:
    day = date_format(bar.day, "D d M")
    segments = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" data-role="{}">'
        "<title>{}, {}: {}</title></rect>",
        (
            (s.x, s.y, s.width, s.height, s.colour, s.label, day, s.label, s.count)
            for s in bar.segments
        ),
    )
    label = ""
    if bar.label:
        label = format_html(
            '<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="currentColor">{}</text>',
            bar.label_x,
            chart.height - 6,
            bar.label,
        )
    return format_html(
        '<g data-day="{}" data-count="{}"><title>{}: {} activation{}</title>{}{}</g>',
        bar.day.isoformat(),
        bar.total,
        day,
        bar.total,
        "" if bar.total == 1 else "s",
        segments,
        label,
    )


def _nice_ceiling(value: int) -> int:
    """An axis maximum a person reads easily: 1..10, then a multiple of 5, 10, 50..."""
    if value <= 10:
        return max(value, 1)
    step = 5
    while value > step * 10:
        step *= 2 if str(step)[0] == "5" else 5
    return -(-value // step) * step


def _series(rows: list[tuple]) -> list[Series]:
    """The busiest roles get a colour each; the others share "Other roles"."""
    totals: dict[int, list] = {}
    for _day, role_id, name, n in rows:
        entry = totals.setdefault(role_id, [0, name])
        entry[0] += n
    ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[1][1]))
    series = [
        Series(key=role_id, label=name, colour=PALETTE[n])
        for n, (role_id, (_, name)) in enumerate(ranked[:CHART_ROLES])
    ]
    if len(ranked) > CHART_ROLES:
        series.append(Series(key="other", label="Other roles", colour=PALETTE[-1]))
    return series


def bar_chart(
    chart_id: str, title: str, days: list[date], rows: list[tuple], series: list[Series]
) -> BarChart:
    """Stacked bars, one per day, a segment per role (`rows`: day, role id, name, count)."""
    keys = {s.key for s in series}
    per_day: dict[date, dict] = {day: {} for day in days}
    for day, role_id, _name, n in rows:
        if day not in per_day:
            continue
        key = role_id if role_id in keys else "other"
        per_day[day][key] = per_day[day].get(key, 0) + n
    chart = BarChart(title=title, days=[], series=series, y_max=1, total=0, chart_id=chart_id)
    chart.y_max = _nice_ceiling(max((sum(c.values()) for c in per_day.values()), default=0))
    plot_width = chart.plot_right - chart.left
    slot = plot_width / len(days)
    bar_width = max(slot * 0.7, 1.0)
    plot_height = chart.plot_bottom - 8
    label_every = 1 if len(days) <= 7 else 7
    for index, day in enumerate(days):
        counts = per_day[day]
        bar = DayBar(day=day, total=sum(counts.values()))
        x = chart.left + index * slot + (slot - bar_width) / 2
        y = float(chart.plot_bottom)
        for s in series:
            n = counts.get(s.key, 0)
            if not n:
                continue
            height = plot_height * n / chart.y_max
            y -= height
            bar.segments.append(
                Segment(round(x, 1), round(y, 1), round(bar_width, 1), round(height, 1),
                        s.colour, s.label, n)
            )  # fmt: skip
        if (len(days) - 1 - index) % label_every == 0:
            bar.label = date_format(day, "d M")
            bar.label_x = round(x + bar_width / 2, 1)
        chart.total += bar.total
        chart.days.append(bar)
    return chart


@dataclass
class TypeBar:
    label: str
    count: int
    colour: str
    y: int
    width: float
    text_x: float


@dataclass
class TypeChart:
    title: str
    bars: list[TypeBar]
    chart_id: str = ""
    width: int = 600
    height: int = 0
    left: int = 170

    @cached_property
    def svg(self) -> str:
        described = ", ".join(f"{bar.label} {bar.count}" for bar in self.bars)
        bars = format_html_join(
            "",
            '<g data-type="{label}" data-count="{count}">'
            '<text x="0" y="{text_y}" font-size="13" fill="currentColor">{label}</text>'
            '<rect x="{left}" y="{y}" width="{width}" height="22" fill="{colour}" rx="2">'
            "<title>{label}: {count}</title></rect>"
            '<text x="{text_x}" y="{text_y}" font-size="13" fill="currentColor">{count}</text>'
            "</g>",
            (
                {
                    "label": bar.label,
                    "count": bar.count,
                    "text_y": bar.y + 16,
                    "left": self.left,
                    "y": bar.y,
                    "width": bar.width,
                    "colour": bar.colour,
                    "text_x": bar.text_x,
                }
                for bar in self.bars
            ),
        )
        return format_html(
            '<svg class="d-block w-100 mb-3" viewBox="0 0 {} {}" role="img" aria-label="{}: {}" '
            'data-chart="{}">{}</svg>',
            self.width,
            self.height,
            self.title,
            described,
            self.chart_id,
            bars,
        )


def type_chart(
    chart_id: str, title: str, counts: insights.TypeCounts, labels: tuple[str, str, str]
) -> TypeChart:
    """Horizontal bars: eligible, time-bound active, permanent active."""
    values = [counts.eligible, counts.timebound, counts.permanent]
    colours = ["#0dcaf0", "#198754", "#dc3545"]
    chart = TypeChart(title=title, bars=[], height=3 * 30 + 6, chart_id=chart_id)
    room = chart.width - chart.left - 60
    top = max(max(values), 1)
    for n, (label, value, colour) in enumerate(zip(labels, values, colours, strict=True)):
        width = round(room * value / top, 1)
        chart.bars.append(TypeBar(label, value, colour, 6 + n * 30, width, chart.left + width + 6))
    return chart


# --- What each viewer sees -------------------------------------------------------------------


def _mine(user, now, *, with_total: bool, known: dict | None = None) -> dict:
    """The viewer's own counts (and, for directory viewers, every pending request), with what
    is `known` already (the own view's lists, and the counts read from them)."""
    mine = dict(known or {})
    if "my_eligible" not in mine:
        held = _my_counts(user, now)
        mine.update(my_eligible=held["eligible"], my_active=held["active"])
    # Read from the clock: a request past its approval deadline is no longer pending.
    pending = RoleRequest.objects.pending(now)
    if with_total:
        pending = pending.aggregate(
            mine=Count("pk", filter=Q(requested_by=user)), total=Count("pk")
        )
        mine.update(my_pending=pending["mine"], pending_total=pending["total"])
    else:
        if "my_pending" not in mine:
            mine["my_pending"] = pending.filter(requested_by=user).count()
        mine["pending_total"] = None
    mine["my_reviews"] = reviewer_inbox(user)
    return mine


def _my_counts(user, now) -> dict:
    """The user's eligible and active roles, kept (assignments.counts) until one of them
    starts or ends, or any assignment or group membership is written."""

    def count() -> dict:
        in_force = Q(start__lte=now) & (Q(end__isnull=True) | Q(end__gt=now))
        held = (
            Assignment.objects.not_ended(now)
            .for_user(user)
            .aggregate(
                eligible=Count("pk", filter=Q(kind=AssignmentKind.ELIGIBLE)),
                active=Count("pk", filter=Q(kind=AssignmentKind.ACTIVE) & in_force),
                next_start=Min("start", filter=Q(start__gt=now)),
                next_end=Min("end", filter=Q(end__gt=now)),
            )
        )
        changes = [held.pop("next_start"), held.pop("next_end")]
        return {**held, "next_change": min(filter(None, changes), default=None)}

    return counts.kept(f"mine:{user.pk}", now, count)


def _own_view(user, now) -> dict:
    """For people who administer nothing: their roles and their pending requests, and their
    numbers from the same rows when all of them fit on the page (most people hold a few
    roles and wait for a few requests): a count query less for each."""
    roles = list(
        Assignment.objects.not_ended(now)
        .for_user(user)
        .select_related("role", "scope", "principal_group")
        .order_by("kind", "role__name", "scope__path", "pk")[: OWN_ROLES + 1]
    )
    requests = list(
        RoleRequest.objects.pending(now)
        .filter(requested_by=user)
        .select_related("role", "scope", "principal_group")
        .order_by("-created_at", "-pk")[: OWN_REQUESTS + 1]
    )
    view = {
        "own_roles": roles[:OWN_ROLES],
        "own_requests": requests[:OWN_REQUESTS],
        "own_roles_max": OWN_ROLES,
    }
    if len(roles) <= OWN_ROLES:
        view["my_eligible"] = sum(a.kind == AssignmentKind.ELIGIBLE for a in roles)
        view["my_active"] = sum(
            a.kind == AssignmentKind.ACTIVE and a.is_in_force(now) for a in roles
        )
    if len(requests) <= OWN_REQUESTS:
        view["my_pending"] = len(requests)
    return view


# --- Counts over every assignment, kept for a minute ---------------------------------------


def _counted(key: str, compute):
    """(value, when it was counted). The aggregates over every assignment cost tens of
    milliseconds at 100,000 of them: they are counted at most once per PIM_DASHBOARD_COUNTS_
    SECONDS (60) in each cache (with Django's default cache, each web process), and the page
    says when. They never decide access: nothing but this page reads them."""
    seconds = getattr(settings, "PIM_DASHBOARD_COUNTS_SECONDS", 60)
    if seconds <= 0:
        return compute(), timezone.now()
    key = f"pim:dashboard:{key}"
    kept = cache.get(key)
    if kept is None:
        kept = (compute(), timezone.now())
        cache.set(key, kept, seconds)
    return kept


def _visibility_key(grants) -> str:
    """The same key for every viewer who sees the same assignments."""
    directory, tops = grants.visible_role_kinds_and_paths("view")
    if directory and ROOT_PATH in tops:
        return "all"
    seen = "\n".join([str(directory), *sorted(tops)])
    return hashlib.sha256(seen.encode()).hexdigest()[:32]


def _visible(grants):
    """What the viewer may see; everything, without the restriction's joins, for those who
    see every directory role and every scope."""
    if _visibility_key(grants) == "all":
        return Assignment.objects.all()
    return Assignment.objects.restrict(grants)


def _charts(grants, now) -> dict:
    visible = _visible(grants)
    month = insights.local_days(30, now)
    key = f"charts:{_visibility_key(grants)}:{timezone.get_current_timezone_name()}:{month[-1]}"
    drawn, counted_at = _counted(key, lambda: _drawn_charts(visible, month, now))
    return {**drawn, "counted_at": counted_at}


def _drawn_charts(visible, month: list[date], now) -> dict:
    """The counts and the charts drawn from them, SVG included: kept with the counts, since
    they change only when the counts do."""
    counts = insights.assignment_counts(visible, now)
    rows = insights.activations_per_day(visible, month, now)
    series = _series(rows)
    drawn = {
        "counts": counts,
        "charts": {
            "week": bar_chart("week", "Activations in the last 7 days", month[-7:], rows, series),
            "month": bar_chart("month", "Activations in the last 30 days", month, rows, series),
        },
        "type_charts": [
            type_chart(
                "types-1",
                "Directory roles",
                counts.directory,
                ("Eligible", "Active (time-bound)", "Active (permanent)"),
            ),
            type_chart(
                "types-2",
                "Resource roles",
                counts.resource,
                ("Just-in-time (eligible)", "Time-bound active", "Permanent active"),
            ),
        ],
    }
    for chart in [*drawn["charts"].values(), *drawn["type_charts"]]:
        chart.svg  # noqa: B018 (drawn now, so that the cache keeps the SVG too)
    return drawn


# --- The directory's tiles and insights ----------------------------------------------------


def _global_admin_thresholds() -> dict:
    """The "too many Global Administrators" alert's thresholds, so the page and the alert
    agree: more than `count` people, who are more than `percent` of the privileged ones."""
    stored = AlertSetting.objects.filter(kind=GLOBAL_ADMIN_ALERT).first()
    return effective_thresholds(GLOBAL_ADMIN_ALERT, stored.thresholds if stored else None)


def _alert_counts() -> dict:
    """Open alerts by severity (the tile), and `alerts_state`: a name for the open alerts as
    they are, which changes when one opens, changes or is resolved (for `_directory_part`)."""
    rows = list(
        Alert.objects.open()
        .order_by("severity")
        .values_list("severity")
        .annotate(n=Count("pk"), latest=Max("updated_at"))
    )
    by_severity = {severity: n for severity, n, _ in rows}
    return {
        "alerts_by_severity": [
            {
                "severity": s,
                "label": s.label,
                "count": by_severity.get(s, 0),
                "colour": SEVERITY_COLOURS[s],
            }
            for s in sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.get)
        ],
        "alerts_open": sum(by_severity.values()),
        "alerts_state": repr(rows),
    }


def _top_alerts() -> list[Alert]:
    rank = Case(
        *[When(severity=s, then=Value(n)) for s, n in SEVERITY_ORDER.items()],
        output_field=IntegerField(),
    )
    top = Alert.objects.open().annotate(rank=rank).order_by("rank", "-opened_at", "-pk")
    return list(top[:TOP_ALERTS])


def _standing(request, roles, now) -> dict:
    rows = insights.standing_access(now, roles)
    role_filter = positive_int(request.GET.get("standing_role"))
    if role_filter and any(role.pk == role_filter for role in roles):
        rows = rows.filter(role_id=role_filter)
    else:
        role_filter = None
    page = Paginator(rows, STANDING_PAGE_SIZE).get_page(request.GET.get("standing_page"))
    page.object_list = list(page.object_list)
    attach_people(page.object_list, "principal_user", "created_by")
    return {"standing_page": page, "standing_role": role_filter}


def _global_admin_insight(holders: insights.HolderCounts) -> dict:
    thresholds = _global_admin_thresholds()
    global_admins = insights.global_administrators(holders)
    everyone = holders.everyone.total
    percent = 100 * global_admins.total / everyone if everyone else 0
    return {
        "global_admins": global_admins,
        "global_admin_thresholds": thresholds,
        "global_admin_percent": round(percent),
        "too_many_global_admins": global_admins.total > thresholds["count"]
        and percent > thresholds["percent"],
    }


def _directory_insights(request, grants, now) -> dict:
    roles = insights.privileged_roles()
    holders, holders_counted_at = _counted("holders", lambda: insights.holders_per_role(roles, now))
    return {
        **_global_admin_insight(holders),
        **_standing(request, roles, now),
        "top_alerts": _top_alerts(),
        "holders": holders,
        "holders_counted_at": holders_counted_at,
        "privileged_roles": roles,
        "can_manage_directory": grants.can_manage_directory(),
        "standing_form": StandingAccessForm(),
    }


def _directory_part(request, grants, now, alerts_state: str) -> str:
    """The directory's insights (people per privileged role, the most severe alerts, Global
    Administrators, standing access) drawn: about twenty milliseconds of reads and drawing
    at 100,000 assignments, so the drawn part is kept like the counts (`_counted`), under a
    key that changes with whatever it shows: any committed write of assignments (their
    generation), any change of the open alerts, the standing access page and filter asked
    for, the viewer's time zone and whether they may change standing access. It holds
    nothing else of the viewer: the standing form's token is outside it (dashboard.html)."""
    key = "\n".join(
        [
            counts.generation(),
            alerts_state,
            request.GET.urlencode(),
            timezone.get_current_timezone_name(),
            str(grants.can_manage_directory()),
        ]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    drawn, _ = _counted(
        f"directory:{digest}",
        lambda: render_to_string(
            "pim_portal/partials/dashboard_directory.html",
            _directory_insights(request, grants, now),
            request,
        ),
    )
    return drawn


def _directory_view(request, grants, now) -> dict:
    alerts = _alert_counts()
    return {
        **alerts,
        "directory_part": _directory_part(request, grants, now, alerts["alerts_state"]),
        "reviews_in_progress": ReviewInstance.objects.in_progress(now).count(),
        "recent_events": AuditEvent.objects.order_by("-id")[:RECENT_EVENTS],
        "can_manage_directory": grants.can_manage_directory(),
    }


@require_GET
def dashboard(request):
    now = timezone.now()
    grants = request_grants(request)
    sees_directory = grants.can_view_directory()
    administers = sees_directory or grants.can_view_resources()
    context = {
        "section": "dashboard",
        "now": now,
        "administers": administers,
        "can_view_directory": sees_directory,
    }
    if not administers:
        own = _own_view(request.user, now)
        context.update(_mine(request.user, now, with_total=False, known=own))
    else:
        context.update(_mine(request.user, now, with_total=sees_directory))
        context.update(_charts(grants, now))
        if sees_directory:
            context.update(_directory_view(request, grants, now))
    return render(request, "pim_portal/dashboard.html", context)


# --- Standing access: make eligible, or remove, in bulk -------------------------------------


class StandingAccessForm(forms.Form):
    """What to do with the assignments ticked in the standing-access table (their ids come
    as `assignment` values, read with `selected_ids`)."""

    action = forms.ChoiceField(choices=[("make_eligible", "Make eligible"), ("remove", "Remove")])
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "form": "standing-form"}),
        max_length=2000,
        label="Justification for the selected assignments",
        error_messages={"required": "Say why the standing access changes."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.layout = Layout("justification")
        self.helper.form_tag = False  # the template draws the table of checkboxes around it
        self.helper.disable_csrf = True  # the form's token is outside the kept part


def selected_ids(values) -> list[int]:
    """The distinct ids ticked, in order; junk is dropped."""
    return list(dict.fromkeys(pk for pk in map(positive_int, values) if pk))


def _back(request) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("dashboard")


@dataclass
class StandingOutcome:
    changed: int = 0
    skipped: int = 0  # no longer standing access, or left as they were
    refused: list[str] = field(default_factory=list)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _report(request, outcome: StandingOutcome, done: str) -> None:
    if outcome.changed:
        messages.success(request, f"{done} {_plural(outcome.changed, 'standing assignment')}.")
    for why in dict.fromkeys(outcome.refused):
        messages.error(request, why)
    if outcome.skipped:
        messages.info(
            request,
            f"{_plural(outcome.skipped, 'selected assignment')} left as "
            f"{'it was' if outcome.skipped == 1 else 'they were'}: no longer standing access "
            "(ended or changed meanwhile), or kept by a rule.",
        )


def _remove(actor, ids: list[int], justification: str) -> StandingOutcome:
    removal = services.assignments_remove_many(
        actor=actor, assignment_ids=ids, justification=justification
    )
    return StandingOutcome(
        changed=len(removal.removed),
        skipped=len(removal.already_ended),
        refused=list(removal.refused.values()),
    )


def _make_eligible(actor, ids: list[int], justification: str) -> StandingOutcome:
    try:
        made = standing_make_eligible_many(
            actor=actor, assignment_ids=ids, justification=justification
        )
    except ValidationError as error:  # the role's settings refuse the eligible assignment
        return StandingOutcome(refused=list(error.messages))
    return StandingOutcome(changed=made, skipped=len(ids) - made)


@require_POST
def standing_access_change(request):
    """Make the selected permanent active assignments of privileged roles eligible, or remove
    them: for directory administrators, through the assignments services (audited there)."""
    grants = request_grants(request)
    if not grants.can_manage_directory():
        deny(request.user, what="change standing access from the dashboard")
    form = StandingAccessForm(request.POST)
    posted = selected_ids(request.POST.getlist("assignment"))
    if not posted:
        messages.error(request, "Choose at least one assignment.")
        return redirect(_back(request))
    if not form.is_valid():
        for errors in form.errors.values():
            for text in errors:
                messages.error(request, text)
        return redirect(_back(request))
    # Only what the table lists: an id that is not (or no longer) standing access is left.
    ids = list(insights.standing_access().filter(pk__in=posted).values_list("pk", flat=True))
    justification = form.cleaned_data["justification"]
    if not ids:
        outcome, done = StandingOutcome(), ""
    elif form.cleaned_data["action"] == "remove":
        outcome, done = _remove(request.user, ids, justification), "Removed"
    else:
        outcome, done = _make_eligible(request.user, ids, justification), "Made eligible"
    outcome.skipped += len(posted) - len(ids)
    _report(request, outcome, done)
    return redirect(_back(request))

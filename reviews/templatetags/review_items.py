"""The rows of review items, written in Python rather than in the templates: an {% include %}
per cell, then the template loop over a page of 25 rows (a dozen lookups and filters each),
then format_html's lazy wrappers each cost a page more than the rest of its rows. The HTML is
what the template wrote, every value escaped."""

from django import template
from django.template.defaultfilters import truncatechars
from django.utils.safestring import mark_safe

from assignments.choices import AssignmentKind
from pim_portal.humanize import when
from pim_portal.templatetags.pim import escape_text

register = template.Library()

NO_VALUE = "—"
REASON_SHOWN = 200  # characters of a reviewer's reason on the instance page
KIND_WORDS = dict(AssignmentKind.choices)  # get_kind_display builds this dict at every call


def _principal(item) -> str:
    if item.principal_user_id:
        via = ""
        if item.via_group:
            group = escape_text(item.principal_group.name)
            via = f' <span class="small text-muted">via {group}</span>'
        name = escape_text(item.principal_name)
        return f'<i class="bi bi-person" aria-hidden="true"></i> {name}{via}'
    if item.principal_group_id:
        return (
            f'<i class="bi bi-people" aria-hidden="true"></i> {escape_text(item.principal_name)} '
            '<span class="small text-muted">(group)</span>'
        )
    return f'{escape_text(item.principal_name)} <span class="small text-muted">(deleted)</span>'


def _recommendation(item) -> str:
    if not item.recommendation or item.recommendation == "none":
        return f'<span class="text-muted">{NO_VALUE}</span>'
    reason = ""
    if item.recommendation_reason:
        reason = f'<div class="small text-muted">{escape_text(item.recommendation_reason)}</div>'
    label = escape_text(item.recommendation_label)
    return f'<span class="badge text-bg-light border">{label}</span>{reason}'


def _decision(item) -> str:
    badge = (
        f'<span class="badge text-bg-{escape_text(item.decision_colour)}">'
        f"{escape_text(item.decision_label)}</span>"
    )
    if item.defaulted:
        note = '<div class="small text-muted">No response: the review\'s default</div>'
    elif item.decided_at:
        note = f'<div class="small text-muted">{escape_text(when(item.decided_at))}</div>'
    else:
        note = ""
    return f"{badge}\n{note}"


def _activity(item) -> str:
    activated = escape_text(when(item.last_activation_at, "never"))
    signed_in = escape_text(when(item.last_sign_in_at, "never"))
    return (
        f'<div>Activated: {activated}</div>\n<div class="text-muted">Signed in: {signed_in}</div>'
    )


@register.simple_tag
def item_principal(item) -> str:
    """A user (for a member of a group, "via" the group), a group, or a deleted principal."""
    return mark_safe(_principal(item))  # noqa: S308 (every value escaped by _principal)


@register.simple_tag
def item_recommendation(item) -> str:
    """The recommendation's badge and reason, or a dash when there is none."""
    return mark_safe(_recommendation(item))  # noqa: S308 (every value escaped)


@register.simple_tag
def item_decision(item) -> str:
    """The decision's badge, and when it was taken ("No response" when the default took it)."""
    return mark_safe(_decision(item))  # noqa: S308 (every value escaped)


@register.simple_tag
def item_activity(item) -> str:
    """Last activation and last sign-in, in the viewer's zone."""
    return mark_safe(_activity(item))  # noqa: S308 (every value escaped)


def _item_row(item, can_decide: bool, is_reviewer: bool, scopes: dict) -> str:
    pk = int(item.pk)
    principal_name = escape_text(item.principal_name)
    role = escape_text(item.role.name)
    if item.scope_id not in scopes:  # the rows of a page share a few scopes
        scopes[item.scope_id] = (escape_text(item.scope), escape_text(item.scope.path))
    scope, path = scopes[item.scope_id]
    select = ""
    if can_decide:
        select = (
            f'<td class="stack-select"><input class="form-check-input" type="checkbox"'
            f' name="item" value="{pk}" id="item-{pk}"'
            f' aria-label="Select {principal_name}: {role} at {scope}"></td>'
        )
    reviewer = ""
    if not is_reviewer:  # those who see every item see whose each is
        whose = (
            escape_text(item.reviewer)
            if item.reviewer_id
            else '<span class="text-muted">The review\'s reviewers</span>'
        )
        reviewer = f'\n  <td data-label="Reviewer">{whose}</td>'
    reason = escape_text(truncatechars(item.reason, REASON_SHOWN)) if item.reason else NO_VALUE
    ends = escape_text(when(item.assignment_end))
    return (
        f'<tr data-item-id="{pk}">{select}\n'
        f'  <td class="stack-title" data-label="Principal">{_principal(item)}</td>\n'
        f'  <td data-label="Role">{role}</td>\n'
        f'  <td data-label="Scope"><span title="{path}">{scope}</span></td>\n'
        f'  <td data-label="Type">{escape_text(KIND_WORDS.get(item.kind, item.kind))}</td>\n'
        f'  <td data-label="Ends" class="text-nowrap">{ends}</td>\n'
        f'  <td data-label="Last activation / sign-in" class="small">\n{_activity(item)}\n  </td>\n'
        f'  <td data-label="Recommendation">{_recommendation(item)}</td>\n'
        f'  <td data-label="Decision">{_decision(item)}</td>\n'
        f'  <td data-label="Reason" class="text-break">{reason}</td>\n'
        f'  <td data-label="Decided by">{escape_text(item.decided_by_name or NO_VALUE)}</td>'
        f"{reviewer}\n</tr>\n"
    )


@register.simple_tag
def item_rows(items, *, can_decide: bool, is_reviewer: bool) -> str:
    """The instance page's rows: a checkbox for whoever may decide now, and the Reviewer
    column for those who see every item without reviewing it."""
    scopes: dict[int, tuple[str, str]] = {}
    rows = "".join(_item_row(item, can_decide, is_reviewer, scopes) for item in items)
    return mark_safe(rows)  # noqa: S308 (every value escaped by _item_row)

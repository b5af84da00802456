"""The rows of Approve requests, written in Python rather than in the template: a page of 25
requests, a dozen lookups and filters per row, cost the template about as much as the rest
of the page. The HTML is what the template wrote, every value escaped."""

from django import template
from django.template.defaultfilters import truncatechars
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from assignments.choices import AssignmentKind, RequestAction
from pim_portal.humanize import duration_words, when
from pim_portal.templatetags.pim import escape_text, pk_url, remaining

register = template.Library()

JUSTIFICATION_SHOWN = 120  # characters of a justification in a row
# get_FOO_display builds its dict at every call.
ACTION_WORDS = dict(RequestAction.choices)
KIND_WORDS = dict(AssignmentKind.choices)


def _requester(request, requester: str) -> str:
    if not request.principal_group_id:
        return requester
    return f'{requester} <span class="text-muted">for {escape_text(request.principal_group)}</span>'


def _action(item) -> str:
    request = item.request
    words = escape_text(ACTION_WORDS.get(request.action, request.action))
    if request.approvals_required <= 1:
        return words
    return (
        f'{words}<div class="small text-muted">{int(item.approvals)} of '
        f"{int(request.approvals_required)} approvals</div>"
    )


def _start_and_duration(request) -> str:
    if request.action == RequestAction.SELF_ACTIVATE:
        start = escape_text(when(request.start, "On approval"))
        duration = escape_text(duration_words(request.duration))
        return f'{start}<div class="small text-muted">{duration}</div>'
    kind = escape_text(KIND_WORDS.get(request.kind, request.kind))
    return f"{kind} until {escape_text(when(request.end))}"


def _ticket(request) -> str:
    if not request.ticket_number:
        return '<span class="text-muted">—</span>'
    return f"{escape_text(request.ticket_system)} {escape_text(request.ticket_number)}"


def _actions(item, requester: str) -> str:
    request = item.request
    pk = int(request.pk)
    link = escape_text(pk_url(pk, "approvals:request_detail"))
    verb = "Review" if item.can_decide else "View"
    html = f'<a class="btn btn-sm btn-outline-secondary" href="{link}">{verb}</a>'
    if item.can_cancel:
        html += (
            f'\n<button class="btn btn-sm btn-outline-danger" type="submit" form="cancel-{pk}"'
            f' data-confirm="Cancel this request of {requester}?">Cancel</button>'
        )
    if item.decided_by_me:
        html += '\n<div class="small text-muted">You approved it; it waits for others.</div>'
    elif not item.can_decide:
        html += '\n<div class="small text-muted">Not yours to decide.</div>'
    return html


def _row(item, now) -> str:
    request = item.request
    pk = int(request.pk)
    requester = escape_text(request.requested_by)
    role = escape_text(request.role)
    select = ""
    if item.can_decide:
        select = (
            f'<input class="form-check-input" type="checkbox" name="request" value="{pk}"'
            f' aria-label="Select the request of {requester} for {role}">'
        )
    justification = escape_text(truncatechars(request.justification, JUSTIFICATION_SHOWN))
    deadline = escape_text(when(request.approval_deadline, "Never"))
    left = escape_text(remaining(request.approval_deadline))
    return (
        f'<tr data-request-id="{pk}">\n'
        f"  <td>{select}</td>\n"
        f"  <td>{_requester(request, requester)}</td>\n"
        f"  <td>{role}</td>\n"
        f"  <td>{escape_text(request.scope)}</td>\n"
        f"  <td>{_action(item)}</td>\n"
        f"  <td>{_start_and_duration(request)}</td>\n"
        f'  <td class="text-break">{justification}</td>\n'
        f"  <td>{_ticket(request)}</td>\n"
        f"  <td>{escape_text(timesince(request.created_at, now))}</td>\n"
        f'  <td>{deadline}<div class="small text-muted">in {left}</div></td>\n'
        f'  <td class="text-nowrap">{_actions(item, requester)}</td>\n'
        "</tr>\n"
    )


@register.simple_tag
def inbox_rows(items, now) -> str:
    """The rows of a page of inbox items (`approvals.services.InboxItem`): a checkbox for
    what the viewer may decide, a Cancel button for who may cancel, "waiting" measured to
    `now`."""
    return mark_safe("".join(_row(item, now) for item in items))  # noqa: S308 (every value escaped by _row)

"""The rows of a role's member table (a role's tabs, a role at a scope), written in Python
rather than in the template: the template loop over a page of 25 rows, with an include for each
principal and for its provisioning and a lookup or filter per cell, cost more than the rest of
the page. The HTML is what the template wrote, every value escaped."""

from django import template
from django.utils.safestring import mark_safe

from pim_portal.humanize import when
from pim_portal.templatetags.pim import escape_text, pk_url, status_badge, time_left

register = template.Library()

NO_VALUE = "—"


def _principal(assignment) -> str:
    """What assignments/partials/principal.html writes: a user (and e-mail) or a group."""
    if assignment.principal_user_id:
        user = assignment.principal_user
        email = ""
        if user.email:
            email = f' <span class="text-muted small">{escape_text(user.email)}</span>'
        return f'<i class="bi bi-person" aria-hidden="true"></i> {escape_text(user)}{email}'
    group = escape_text(assignment.principal_group.name)
    return f'<i class="bi bi-people" aria-hidden="true"></i> {group}'


def provisioning_html(statuses) -> str:
    """What assignments/partials/provisioning.html writes: where and how each status stands."""
    lines = []
    for status in statuses:
        error = ""
        if status.error:
            error = f'<div class="text-danger text-break">{escape_text(status.error)}</div>'
        lines.append(
            f'<div class="small provisioning-status" data-state="{escape_text(status.state)}">'
            '<i class="bi bi-hdd-network" aria-hidden="true"></i> '
            f'<span class="text-muted">{escape_text(status.where)}</span> '
            f"{status_badge(status.state, status.label)}{error}</div>"
        )
    return "".join(f"\n{line}" for line in lines)


def _who(assignment) -> str:
    """The principal, marked when activated from an eligibility, with its provisioning."""
    activated = ""
    if assignment.activated_from_id:
        activated = ' <span class="badge text-bg-light border">activated</span>'
    return f"{_principal(assignment)}{activated}{provisioning_html(assignment.provisioning)}"


def _membership(assignment) -> str:
    if assignment.membership == "Direct":
        return "Direct"
    return f'<span class="text-muted">{escape_text(assignment.membership)}</span>'


def _actions(assignment, expired: bool) -> str:
    """Renew on the expired tab; Update, Extend (when it ends) and Remove on the others."""
    if not assignment.can_manage:
        return ""
    pk = assignment.pk
    if expired:
        renew = pk_url(pk, "assignments:assignment_renew")
        return f'<a class="btn btn-sm btn-outline-primary" href="{renew}">Renew</a>'
    update = pk_url(pk, "assignments:assignment_update")
    buttons = [f'<a class="btn btn-sm btn-outline-secondary" href="{update}">Update</a>']
    if assignment.end:
        extend = pk_url(pk, "assignments:assignment_extend")
        buttons.append(f'<a class="btn btn-sm btn-outline-secondary" href="{extend}">Extend</a>')
    remove = pk_url(pk, "assignments:assignment_remove")
    buttons.append(f'<a class="btn btn-sm btn-outline-danger" href="{remove}">Remove</a>')
    return "\n".join(buttons)  # a space between the buttons, as the template left


def _member_row(assignment, expired: bool, scopes: dict) -> str:
    if assignment.scope_id not in scopes:  # the rows of a page share a few scopes
        scope = assignment.scope
        scopes[assignment.scope_id] = (escape_text(scope), escape_text(scope.path))
    scope, path = scopes[assignment.scope_id]
    time_left_cell = ""
    if not expired:
        time_left_cell = f'\n  <td class="time-left">{escape_text(time_left(assignment))}</td>'
    created_by = assignment.created_by
    return (
        "<tr>\n"
        f"  <td>{_who(assignment)}</td>\n"
        f"  <td>{escape_text(assignment.principal_type)}</td>\n"
        f"  <td>{_membership(assignment)}</td>\n"
        f'  <td><span title="{path}">{scope}</span></td>\n'
        f'  <td class="text-nowrap">{escape_text(when(assignment.start))}</td>\n'
        f'  <td class="text-nowrap">{escape_text(when(assignment.end))}</td>'
        f"{time_left_cell}\n"
        f"  <td>{escape_text(created_by) if created_by else NO_VALUE}</td>\n"
        f'  <td class="text-end text-nowrap">{_actions(assignment, expired)}</td>\n'
        "</tr>\n"
    )


@register.simple_tag
def member_rows(assignments, *, tab: str) -> str:
    """The rows of a page of a role's members, labelled by the view (membership, can_manage,
    provisioning): the expired tab has no "Time remaining" and offers Renew alone."""
    expired = tab == "expired"
    scopes: dict[int, tuple[str, str]] = {}
    rows = "".join(_member_row(assignment, expired, scopes) for assignment in assignments)
    return mark_safe(rows)  # noqa: S308 (every value escaped by _member_row)

"""The cells of a review item's row, written in Python: a page shows 25 items, and an
{% include %} per cell cost more than the rest of the row (each include is a template
render of its own)."""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from pim_portal.humanize import when

register = template.Library()


@register.simple_tag
def item_principal(item) -> str:
    """A user (for a member of a group, "via" the group), a group, or a deleted principal."""
    if item.principal_user_id:
        via = ""
        if item.via_group:
            via = format_html(
                ' <span class="small text-muted">via {}</span>', item.principal_group.name
            )
        return format_html(
            '<i class="bi bi-person" aria-hidden="true"></i> {}{}', item.principal_name, via
        )
    if item.principal_group_id:
        return format_html(
            '<i class="bi bi-people" aria-hidden="true"></i> {} '
            '<span class="small text-muted">(group)</span>',
            item.principal_name,
        )
    return format_html('{} <span class="small text-muted">(deleted)</span>', item.principal_name)


@register.simple_tag
def item_recommendation(item) -> str:
    """The recommendation's badge and reason, or a dash when there is none."""
    if not item.recommendation or item.recommendation == "none":
        return mark_safe('<span class="text-muted">—</span>')
    reason = ""
    if item.recommendation_reason:
        reason = format_html('<div class="small text-muted">{}</div>', item.recommendation_reason)
    return format_html(
        '<span class="badge text-bg-light border">{}</span>{}', item.recommendation_label, reason
    )


@register.simple_tag
def item_decision(item) -> str:
    """The decision's badge, and when it was taken ("No response" when the default took it)."""
    badge = format_html(
        '<span class="badge text-bg-{}">{}</span>', item.decision_colour, item.decision_label
    )
    if item.defaulted:
        note = mark_safe('<div class="small text-muted">No response: the review\'s default</div>')
    elif item.decided_at:
        note = format_html('<div class="small text-muted">{}</div>', when(item.decided_at))
    else:
        note = ""
    return format_html("{}\n{}", badge, note)


@register.simple_tag
def item_activity(item) -> str:
    """Last activation and last sign-in, in the viewer's zone."""
    return format_html_join(
        "\n",
        "<div{}>{}: {}</div>",
        [
            ("", "Activated", when(item.last_activation_at, "never")),
            (mark_safe(' class="text-muted"'), "Signed in", when(item.last_sign_in_at, "never")),
        ],
    )

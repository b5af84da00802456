"""Mail about approvals: django-q2 tasks queued with ids (`pim_portal.jobs.enqueue`) by the
change they report, so a worker sends it, reading fresh rows, never the web request."""

from django.urls import reverse

from approvals.authz import DECIDED_BY_APPROVERS, approvers_for
from approvals.models import ApprovalDecision
from assignments.models import NotificationEvent, RecipientKind, RolePolicy, RoleRequest
from assignments.notifications import recipients
from pim_portal import jobs
from pim_portal.mail import absolute_url, send_templated_mail


def _request(request_id: int) -> RoleRequest | None:
    return (
        RoleRequest.objects.with_related()
        .select_related("completed_by")
        .filter(pk=request_id)
        .first()
    )


def _context(request: RoleRequest, **extra) -> dict:
    return {
        "request": request,
        "detail_link": absolute_url(reverse("approvals:request_detail", args=[request.pk])),
        "inbox_link": absolute_url(reverse("approvals:inbox")),
        "my_requests_link": absolute_url(reverse("assignments:my_requests")),
        **extra,
    }


def _requester_addresses(request: RoleRequest) -> list[str]:
    requester = request.requested_by
    return [requester.email] if requester is not None and requester.email else []


def notify_approvers(request_id: int) -> int:
    """A request arrived: ask its deciders, with a direct link to decide it."""
    request = _request(request_id)
    if request is None or request.status != "pending_approval":
        return 0
    addresses = [u.email for u in approvers_for(request) if u.email]
    if request.action in DECIDED_BY_APPROVERS:
        policy = RolePolicy.objects.effective_for(request.role, request.scope)
        addresses = recipients(
            policy, NotificationEvent.ACTIVATED, RecipientKind.APPROVER, addresses
        )
    return send_templated_mail(
        template="approvals/mail/request_to_approve",
        recipients=addresses,
        context=_context(request),
    )


def notify_decided(request_id: int, actor_id: int) -> int:
    """A request was decided: tell its requester, and the other deciders they need not act."""
    request = _request(request_id)
    if request is None:
        return 0
    decisions = list(ApprovalDecision.objects.filter(request=request))
    deciding = next((d for d in reversed(decisions) if d.approver_id == actor_id), None)
    context = _context(request, decision=deciding, decisions=decisions)
    sent = send_templated_mail(
        template="approvals/mail/decision",
        recipients=_requester_addresses(request),
        context=context,
    )
    others = [u.email for u in approvers_for(request).exclude(pk=actor_id) if u.email]
    sent += send_templated_mail(
        template="approvals/mail/decided_by_other", recipients=others, context=context
    )
    return sent


def notify_decided_many(request_ids: list[int], actor_id: int) -> int:
    """A bulk decision: the same mail as `notify_decided` for each request, in one task."""
    return sum(notify_decided(request_id, actor_id) for request_id in request_ids)


def notify_lapsed(request_id: int) -> int:
    """A request was not decided in time: tell its requester."""
    request = _request(request_id)
    if request is None:
        return 0
    return send_templated_mail(
        template="approvals/mail/lapsed",
        recipients=_requester_addresses(request),
        context=_context(request),
    )


def notify_canceled(request_id: int, actor_id: int) -> int:
    """A pending request was canceled: tell the deciders they need not act, and the requester
    when someone else (an administrator) canceled it."""
    request = _request(request_id)
    if request is None:
        return 0
    context = _context(request, decision=None, decisions=[])
    sent = 0
    if actor_id != request.requested_by_id:
        sent += send_templated_mail(
            template="approvals/mail/decision",
            recipients=_requester_addresses(request),
            context=context,
        )
    others = [u.email for u in approvers_for(request).exclude(pk=actor_id) if u.email]
    sent += send_templated_mail(
        template="approvals/mail/decided_by_other", recipients=others, context=context
    )
    return sent


def on_request_canceled(sender, request_id: int, actor_id: int, **kwargs) -> None:
    """Assignments recorded a cancel (after commit): a worker tells who is concerned."""
    jobs.enqueue("approvals.notifications.notify_canceled", request_id, actor_id)


def on_request_lapsed(sender, request_id: int, **kwargs) -> None:
    """Assignments recorded a lapse (after commit): a worker tells the requester."""
    jobs.enqueue("approvals.notifications.notify_lapsed", request_id)

from functools import cached_property


class _InboxBadge:
    """Counted only when a template reads it (the navigation badge), once per request, and
    then kept for a few seconds (`approvals.services.badge_count`)."""

    def __init__(self, request):
        self._request = request

    @cached_property
    def count(self) -> int:
        from approvals.services import badge_count
        from assignments.authz import request_grants

        request = self._request
        if hasattr(request, "_approvals_inbox_count"):  # the inbox page counted already
            return request._approvals_inbox_count
        return badge_count(request.user, request_grants(request))


def inbox(request):
    """`approvals_inbox.count`: how many requests wait for the signed-in user's decision."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"approvals_inbox": _InboxBadge(request)}

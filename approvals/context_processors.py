from functools import cached_property


class _InboxBadge:
    """Counted only when a template reads it (the navigation badge), once per request."""

    def __init__(self, request):
        self._request = request

    @cached_property
    def count(self) -> int:
        from approvals.services import inbox_count
        from assignments.authz import grants_for

        request = self._request
        if hasattr(request, "_approvals_inbox_count"):  # the inbox page counted already
            return request._approvals_inbox_count
        if not hasattr(request, "_pim_grants"):
            request._pim_grants = grants_for(request.user)
        return inbox_count(request.user, request._pim_grants)


def inbox(request):
    """`approvals_inbox.count`: how many requests wait for the signed-in user's decision."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"approvals_inbox": _InboxBadge(request)}

def navigation(request):
    """What the navigation shows: computed once per request from the user's grants."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from assignments.authz import grants_for

    if not hasattr(request, "_pim_grants"):
        request._pim_grants = grants_for(user)
    grants = request._pim_grants
    return {
        "nav": {
            "directory": grants.can_view_directory(),
            "resources": grants.can_view_resources(),
        }
    }

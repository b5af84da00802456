def navigation(request):
    """What the navigation shows: computed once per request from the user's grants."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from assignments.authz import request_grants

    grants = request_grants(request)
    return {
        "nav": {
            "directory": grants.can_view_directory(),
            "resources": grants.can_view_resources(),
        }
    }

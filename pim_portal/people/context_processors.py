def navigation(request):
    """Whether the navigation shows Users and Groups (from the grants computed once per
    request): User Administrators, Global Administrators and directory readers."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from assignments.authz import request_grants
    from pim_portal.people.rules import may_view_people

    return {"nav_people": may_view_people(request_grants(request))}

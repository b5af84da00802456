def navigation(request):
    """What the navigation shows: computed once per request from the user's grants."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from assignments.authz import request_grants
    from assignments.catalog import Perm

    grants = request_grants(request)
    directory = grants.can_view_directory()
    manages_resources = grants.has_anywhere(Perm.MANAGE_RESOURCES)
    return {
        "nav": {
            "directory": directory,
            "resources": grants.can_view_resources(),
            # The audit log and alerts: directory viewers, and resource managers for their
            # scopes; emergency access follow-ups: directory viewers.
            "monitor": directory or manages_resources,
            # SCIM tokens: Global Administrators.
            "provisioning": grants.can_manage_provisioning(),
            # Connectors and webhooks: directory viewers see them, administrators change them.
            "connectors": grants.can_view_connectors(),
        }
    }

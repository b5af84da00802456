"""The built-in role catalog and the portal permissions each role grants where it is held."""


class Perm:
    """Portal permissions. A role grants some of them at the scope where it is held and below."""

    MANAGE_DIRECTORY = "directory.manage"  # directory role assignments and settings
    VIEW_DIRECTORY = "directory.view"  # see directory roles, members and settings
    MANAGE_RESOURCES = "resources.manage"  # resource role assignments and settings at a scope
    VIEW_RESOURCES = "resources.view"  # see resource roles, members and settings at a scope
    MANAGE_USERS = "users.manage"  # users and groups kept in the portal (not the provider's)
    MANAGE_PROVISIONING = "provisioning.manage"  # SCIM tokens: who may provision identities
    MANAGE_CONNECTORS = "connectors.manage"  # connectors, their mappings, webhooks


_VIEW_ALL = [Perm.VIEW_DIRECTORY, Perm.VIEW_RESOURCES]
_MANAGE_ALL = [Perm.MANAGE_DIRECTORY, *_VIEW_ALL]

DIRECTORY_ROLES = [
    (
        "Global Administrator",
        "Can manage all aspects of the directory and the services that use it.",
        [*_MANAGE_ALL, Perm.MANAGE_USERS, Perm.MANAGE_PROVISIONING, Perm.MANAGE_CONNECTORS],
    ),
    (
        "Privileged Role Administrator",
        "Can manage role assignments and all aspects of Privileged Identity Management.",
        [*_MANAGE_ALL, Perm.MANAGE_CONNECTORS],
    ),
    (
        "Security Administrator",
        "Can read security information and reports, and manage security configuration.",
        _VIEW_ALL,
    ),
    ("Security Reader", "Can read security information and reports.", _VIEW_ALL),
    (
        "Global Reader",
        "Can read everything that a Global Administrator can, but not update anything.",
        _VIEW_ALL,
    ),
    (
        "User Administrator",
        "Can manage all aspects of users and groups, including resetting passwords.",
        [Perm.MANAGE_USERS],
    ),
    (
        "Application Administrator",
        "Can create and manage all aspects of app registrations and enterprise apps.",
        [],
    ),
    (
        "Helpdesk Administrator",
        "Can reset passwords for non-administrators and Helpdesk Administrators.",
        [],
    ),
    (
        "Billing Administrator",
        "Can perform common billing related tasks like updating payment information.",
        [],
    ),
]

RESOURCE_ROLES = [
    (
        "Owner",
        "Grants full access to manage all resources, including assigning roles to others.",
        [Perm.MANAGE_RESOURCES, Perm.VIEW_RESOURCES],
    ),
    (
        "User Access Administrator",
        "Lets you manage user access to resources.",
        [Perm.MANAGE_RESOURCES, Perm.VIEW_RESOURCES],
    ),
    (
        "Contributor",
        "Grants full access to manage all resources, but does not allow assigning roles.",
        [],
    ),
    ("Reader", "View all resources, but does not allow you to make any changes.", []),
]

GLOBAL_ADMINISTRATOR = "Global Administrator"
PRIVILEGED_ROLE_ADMINISTRATOR = "Privileged Role Administrator"
SECURITY_ADMINISTRATOR = "Security Administrator"


def install_catalog(Scope, Role, RolePolicy) -> None:
    """Create the directory root and every built-in role with its default settings.

    Idempotent. Takes the model classes so the data migration can pass historical models.
    """
    Scope.objects.get_or_create(
        path="/", defaults={"name": "Directory", "slug": "root", "kind": "root", "depth": 0}
    )
    for kind, catalog in (("directory", DIRECTORY_ROLES), ("resource", RESOURCE_ROLES)):
        for name, description, permissions in catalog:
            role, _ = Role.objects.update_or_create(
                name=name,
                defaults={
                    "description": description,
                    "kind": kind,
                    "permissions": permissions,
                    "is_builtin": True,
                },
            )
            if not RolePolicy.objects.filter(role=role, scope__isnull=True).exists():
                RolePolicy.objects.create(role=role, scope=None)

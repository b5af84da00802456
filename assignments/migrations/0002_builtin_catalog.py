"""The directory root scope and the built-in role catalog, each role with its default settings."""

from django.db import migrations


def create_catalog(apps, schema_editor):
    from assignments.catalog import DIRECTORY_ROLES, RESOURCE_ROLES

    Scope = apps.get_model("assignments", "Scope")
    Role = apps.get_model("assignments", "Role")
    RolePolicy = apps.get_model("assignments", "RolePolicy")
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


class Migration(migrations.Migration):
    dependencies = [("assignments", "0001_initial")]

    operations = [migrations.RunPython(create_catalog, migrations.RunPython.noop)]

"""Global Administrators and Privileged Role Administrators manage connectors and webhooks:
the catalog installed again, which updates the built-in roles' permissions in place."""

from django.db import migrations


def update_catalog(apps, schema_editor):
    from assignments.catalog import install_catalog

    install_catalog(
        apps.get_model("assignments", "Scope"),
        apps.get_model("assignments", "Role"),
        apps.get_model("assignments", "RolePolicy"),
    )


class Migration(migrations.Migration):
    dependencies = [("assignments", "0006_role_tab_count_index")]

    operations = [migrations.RunPython(update_catalog, migrations.RunPython.noop)]

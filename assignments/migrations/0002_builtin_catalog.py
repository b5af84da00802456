"""The directory root scope and the built-in role catalog, each role with its default settings."""

from django.db import migrations


def create_catalog(apps, schema_editor):
    from assignments.catalog import install_catalog

    install_catalog(
        apps.get_model("assignments", "Scope"),
        apps.get_model("assignments", "Role"),
        apps.get_model("assignments", "RolePolicy"),
    )


class Migration(migrations.Migration):
    dependencies = [("assignments", "0001_initial")]

    operations = [migrations.RunPython(create_catalog, migrations.RunPython.noop)]

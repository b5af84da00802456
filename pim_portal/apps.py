from django.apps import AppConfig


class PimPortalConfig(AppConfig):
    name = "pim_portal"
    verbose_name = "PIM Portal"

    def ready(self):
        from django.db.models.signals import post_migrate

        from pim_portal import digest

        post_migrate.connect(digest.ensure_periodic_schedules, sender=self)
        from pim_portal import (
            emergency,  # noqa: F401  (connects the emergency access receivers)
            signin,  # noqa: F401  (connects the sign-in audit receivers)
        )

from django.apps import AppConfig


class PimPortalConfig(AppConfig):
    name = "pim_portal"
    verbose_name = "PIM Portal"

    def ready(self):
        from pim_portal import signin  # noqa: F401  (connects the sign-in audit receivers)

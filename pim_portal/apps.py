from django.apps import AppConfig


class PimPortalConfig(AppConfig):
    name = "pim_portal"
    verbose_name = "PIM Portal"

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Security alerts"

    def ready(self):
        from django.db.models.signals import post_migrate

        from alerts import tasks

        post_migrate.connect(tasks.ensure_periodic_schedules, sender=self)

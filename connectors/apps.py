from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"
    verbose_name = "Connectors and webhooks"

    def ready(self):
        from django.db.models.signals import post_migrate

        from connectors import receivers, tasks

        tasks.register_due_work()
        receivers.connect()
        post_migrate.connect(tasks.ensure_periodic_schedules, sender=self)

        from assignments import extensions
        from connectors.queries import assignment_statuses

        extensions.register_provisioning_status(assignment_statuses)

from django.apps import AppConfig


class AssignmentsConfig(AppConfig):
    name = "assignments"
    verbose_name = "Roles and assignments"

    def ready(self):
        from django.db.models.signals import post_migrate

        from assignments.tasks import ensure_periodic_schedules

        post_migrate.connect(ensure_periodic_schedules, sender=self)

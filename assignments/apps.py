from django.apps import AppConfig


class AssignmentsConfig(AppConfig):
    name = "assignments"
    verbose_name = "Roles and assignments"

    def ready(self):
        from django.db.models.signals import post_migrate

        from assignments.tasks import ensure_periodic_schedules, register_due_work

        post_migrate.connect(ensure_periodic_schedules, sender=self)
        register_due_work()

        from django.contrib.auth import get_user_model
        from django.db.models.signals import m2m_changed

        from assignments.receivers import group_membership_changed

        m2m_changed.connect(
            group_membership_changed,
            sender=get_user_model().groups.through,
            dispatch_uid="assignments.group_membership_changed",
        )

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self):
        from django.db.models.signals import post_migrate

        from approvals import notifications, tasks
        from assignments.signals import request_canceled, request_lapsed, request_submitted

        post_migrate.connect(tasks.ensure_periodic_schedules, sender=self)
        request_submitted.connect(
            tasks.on_request_submitted, dispatch_uid="approvals.on_request_submitted"
        )
        request_lapsed.connect(
            notifications.on_request_lapsed, dispatch_uid="approvals.on_request_lapsed"
        )
        request_canceled.connect(
            notifications.on_request_canceled, dispatch_uid="approvals.on_request_canceled"
        )

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self):
        from django.db.models.signals import post_delete, post_migrate, post_save

        from approvals import notifications, services, tasks
        from approvals.models import ApprovalDecision
        from assignments import counts
        from assignments.signals import request_canceled, request_lapsed, request_submitted
        from pim_portal import timekeeper

        post_migrate.connect(tasks.ensure_periodic_schedules, sender=self)
        # A decision changes what its approvers' kept inboxes show (approvals.services).
        for signal in (post_save, post_delete):
            signal.connect(
                counts.REQUESTS.move_now_and_after_commit,
                sender=ApprovalDecision,
                dispatch_uid=f"requests.decision.{signal is post_save}",
            )
        request_submitted.connect(
            tasks.on_request_submitted, dispatch_uid="approvals.on_request_submitted"
        )
        request_lapsed.connect(
            notifications.on_request_lapsed, dispatch_uid="approvals.on_request_lapsed"
        )
        request_canceled.connect(
            notifications.on_request_canceled, dispatch_uid="approvals.on_request_canceled"
        )
        timekeeper.register(
            timekeeper.DueWork(
                name=tasks.DEADLINE_WORK,
                next_due=services.next_deadline,
                run_batch=services.lapse_batch,
            )
        )

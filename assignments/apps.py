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
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from assignments import counts, signals
        from assignments.models import (
            Assignment,
            RolePolicy,
            RolePolicyGroupObjectPermission,
            RolePolicyUserObjectPermission,
            RoleRequest,
        )
        from assignments.receivers import group_membership_changed

        post_save.connect(counts.forget, sender=Assignment, dispatch_uid="counts.saved")
        post_delete.connect(counts.forget, sender=Assignment, dispatch_uid="counts.deleted")
        signals.assignments_changed.connect(counts.forget, dispatch_uid="counts.bulk")

        # What Approve requests keeps (approvals.services.kept_inbox) follows the requests,
        # the role settings and who they name as approvers; bulk writes of requests move it
        # from RoleRequestQuerySet.
        for model in (
            RoleRequest,
            RolePolicy,
            RolePolicyUserObjectPermission,
            RolePolicyGroupObjectPermission,
        ):
            for signal in (post_save, post_delete):
                signal.connect(
                    counts.REQUESTS.move_now_and_after_commit,
                    sender=model,
                    dispatch_uid=f"requests.{model.__name__}.{signal is post_save}",
                )
        m2m_changed.connect(
            counts.REQUESTS.move_now_and_after_commit,
            sender=get_user_model().groups.through,
            dispatch_uid="requests.membership",
        )

        # A user's own counts (the dashboard's) follow their groups too.
        m2m_changed.connect(
            counts.forget,
            sender=get_user_model().groups.through,
            dispatch_uid="counts.membership",
        )
        m2m_changed.connect(
            group_membership_changed,
            sender=get_user_model().groups.through,
            dispatch_uid="assignments.group_membership_changed",
        )

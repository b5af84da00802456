from django.apps import AppConfig

SEAL_WORK = "audit seal"
STREAM_WORK = "audit stream"


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self):
        from django.db.models.signals import post_migrate

        from audit import log, siem, tasks
        from pim_portal import timekeeper

        # Signed checkpoints, the daily verification and the retention prune (django-q2).
        post_migrate.connect(tasks.ensure_periodic_schedules, sender=self)

        # Writers only insert; the time engine links what they committed into the chain.
        timekeeper.register(
            timekeeper.DueWork(
                name=SEAL_WORK,
                next_due=log.oldest_unsealed,
                run_batch=lambda now, limit: log.seal(limit),
            )
        )
        # Then sends what is sealed to the SIEM (registered after the seal: `catch_up` runs the
        # kinds of work in this order). No target configured: never due.
        timekeeper.register(
            timekeeper.DueWork(
                name=STREAM_WORK,
                next_due=siem.next_due,
                run_batch=siem.stream_batch,
            )
        )

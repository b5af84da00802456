from django.apps import AppConfig

SEAL_WORK = "audit seal"


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self):
        from audit import log
        from pim_portal import timekeeper

        # Writers only insert; the time engine links what they committed into the chain.
        timekeeper.register(
            timekeeper.DueWork(
                name=SEAL_WORK,
                next_due=log.oldest_unsealed,
                run_batch=lambda now, limit: log.seal(limit),
            )
        )

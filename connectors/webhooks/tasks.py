"""The webhooks' due work for the time engine (pim_portal/timekeeper.py).

Two kinds, registered after the audit log's seal (connectors' `ready()` runs after audit's):
the fan-out (sealed audit events past the cursor become deliveries, and their first try goes at
once) and the deliveries (retries as they fall due, test events, "Retry now", and whatever the
fan-out's worker left). Both claim their rows, so any number of workers may run them.
"""

from pim_portal import timekeeper

FANOUT_WORK = "webhook fan-out"
DELIVERY_WORK = "webhook deliveries"


def register_due_work() -> None:
    from connectors.webhooks import delivery, fanout

    timekeeper.register(
        timekeeper.DueWork(
            name=FANOUT_WORK,
            next_due=fanout.next_due,
            run_batch=fanout.fanout_batch,
            # Ends, starts, lapses, provisioning: whatever just wrote audit events is followed
            # at once by the fan-out, in the same worker (it seals them first).
            follows=(timekeeper.ANY,),
        )
    )
    timekeeper.register(
        timekeeper.DueWork(
            name=DELIVERY_WORK, next_due=delivery.next_due, run_batch=delivery.deliver_batch
        )
    )

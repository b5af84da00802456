"""The database lets the retention delete events, and only those a prune checkpoint covers.

A DELETE of an event is allowed when the event is sealed and its `seq` is at most the highest
`seq` of a checkpoint marked `prunes_up_to` (audit.retention signs one before it deletes).
Every other delete is refused as before, and nothing else changes: the seal is still the one
UPDATE an event gets, the head still only moves forward.

- PostgreSQL: the event trigger's function gains the prune case (CREATE OR REPLACE; the
  trigger stays). TRUNCATE is still left alone (Django's flush).
- SQLite had no DELETE trigger, because Django flushes SQLite with `DELETE FROM` (no WHERE),
  which visits the rows oldest first. The new trigger refuses a delete unless the prune covers
  it or the event is the oldest row left: so a flush still empties the table (the same hole
  as PostgreSQL's TRUNCATE), while deleting any other event is refused.

The trigger's lookup of the prune point is one probe of a partial index on the checkpoints
that prune (a handful of rows). The database cannot check a signature: `verify_audit` does,
and the flag is part of what a checkpoint's signature covers.
"""

import importlib

from django.db import migrations

PREVIOUS = importlib.import_module("audit.migrations.0004_events_sealed_after_commit")
EVENT_REFUSED = PREVIOUS.EVENT_REFUSED
NOT_PRUNED = "only events up to a prune checkpoint may be deleted"
PRUNE_POINT = "(SELECT max(seq) FROM audit_auditcheckpoint WHERE prunes_up_to)"

INDEX = [
    "CREATE INDEX audit_checkpoint_prunes ON audit_auditcheckpoint (seq) WHERE prunes_up_to",
]
DROP_INDEX = ["DROP INDEX IF EXISTS audit_checkpoint_prunes"]

POSTGRESQL_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND {PREVIOUS._is_seal("IS NOT DISTINCT FROM")} THEN
            RETURN NEW;
        END IF;
        IF TG_OP = 'DELETE' AND OLD.seq IS NOT NULL AND OLD.seq <= {PRUNE_POINT} THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION '{EVENT_REFUSED}: % of event % refused%', TG_OP,
            COALESCE('#' || OLD.seq::text, 'id ' || OLD.id::text || ' (unsealed)'),
            CASE WHEN TG_OP = 'DELETE' THEN ' ({NOT_PRUNED})' ELSE '' END
            USING ERRCODE = 'restrict_violation';
    END $$
    """,
]

# 0004's function again, in place.
POSTGRESQL_REMOVE = [
    PREVIOUS.POSTGRESQL_INSTALL[0].replace(
        "CREATE FUNCTION audit_event_refuse_change",
        "CREATE OR REPLACE FUNCTION audit_event_refuse_change",
    ),
]

# Constants of this file only: nothing from outside.
SQLITE_INSTALL = [
    f"""
    CREATE TRIGGER audit_auditevent_prune_only BEFORE DELETE ON audit_auditevent
    WHEN OLD.id <> (SELECT min(id) FROM audit_auditevent)
        AND (OLD.seq IS NULL OR OLD.seq > COALESCE({PRUNE_POINT}, 0))
    BEGIN SELECT RAISE(ABORT, '{EVENT_REFUSED}: DELETE refused ({NOT_PRUNED})'); END
    """,  # noqa: S608
]

SQLITE_REMOVE = ["DROP TRIGGER IF EXISTS audit_auditevent_prune_only"]


def _run(schema_editor, statements: dict[str, list[str]]) -> None:
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql, params=None)


def install(apps, schema_editor):
    _run(
        schema_editor, {"postgresql": INDEX + POSTGRESQL_INSTALL, "sqlite": INDEX + SQLITE_INSTALL}
    )


def remove(apps, schema_editor):
    _run(
        schema_editor,
        {"postgresql": POSTGRESQL_REMOVE + DROP_INDEX, "sqlite": SQLITE_REMOVE + DROP_INDEX},
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_checkpoints_verifications_stream")]

    operations = [migrations.RunPython(install, remove, elidable=False)]

"""The database itself refuses to change the audit log, whatever code or SQL asks.

PostgreSQL: no UPDATE or DELETE of an event, no DELETE of the chain head, and the head only
moves forward one event at a time. TRUNCATE is left alone: Django's flush (transactional tests,
`manage.py flush`) empties tables with TRUNCATE, and row triggers do not fire on it.

SQLite: no UPDATE of an event, and the same forward-only head. No DELETE trigger, because
Django flushes SQLite with DELETE FROM, which such a trigger would refuse.

Whoever owns the tables can still drop or disable these triggers; keyed, signed checkpoints
are what catch a rewrite by them.
"""

from django.db import migrations

EVENT_REFUSED = "audit events are append-only"
HEAD_REFUSED = "the audit chain head only moves forward, one event at a time"

POSTGRESQL_INSTALL = [
    f"""
    CREATE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{EVENT_REFUSED}: % of event #% refused', TG_OP, OLD.seq
            USING ERRCODE = 'restrict_violation';
    END $$
    """,
    """
    CREATE TRIGGER audit_auditevent_append_only
        BEFORE UPDATE OR DELETE ON audit_auditevent
        FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change()
    """,
    f"""
    CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' OR NEW.seq <> OLD.seq + 1 THEN
            RAISE EXCEPTION '{HEAD_REFUSED}: % refused', TG_OP
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER audit_auditchainhead_forward_only
        BEFORE UPDATE OR DELETE ON audit_auditchainhead
        FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only()
    """,
]

POSTGRESQL_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_auditchainhead_forward_only ON audit_auditchainhead",
    "DROP FUNCTION IF EXISTS audit_head_forward_only()",
    "DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_event_refuse_change()",
]

SQLITE_INSTALL = [
    f"""
    CREATE TRIGGER audit_auditevent_append_only BEFORE UPDATE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, '{EVENT_REFUSED}: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER audit_auditchainhead_forward_only BEFORE UPDATE ON audit_auditchainhead
    WHEN NEW.seq <> OLD.seq + 1
    BEGIN SELECT RAISE(ABORT, '{HEAD_REFUSED}: UPDATE refused'); END
    """,
]

SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_auditchainhead_forward_only",
    "DROP TRIGGER IF EXISTS audit_auditevent_append_only",
]


def _run(schema_editor, statements: dict[str, list[str]]) -> None:
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql, params=None)


def install(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRESQL_INSTALL, "sqlite": SQLITE_INSTALL})


def remove(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRESQL_REMOVE, "sqlite": SQLITE_REMOVE})


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_actor_survives_user_deletion")]

    operations = [
        migrations.AlterModelOptions(
            name="auditevent",
            options={"base_manager_name": "objects", "ordering": ["-seq"]},
        ),
        migrations.RunPython(install, remove, elidable=False),
    ]

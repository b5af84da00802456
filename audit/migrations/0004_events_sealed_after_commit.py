"""Events are written unsealed, without a lock, and sealed into the chain afterwards.

`seq` may be empty and `prev_hash`/`hash` blank until the sealer (`audit.log.seal`) links the
event. The database's guard changes with it:

- An event allows exactly one UPDATE, its sealing: `seq` from empty to a value and `prev_hash`
  and `hash` from blank to a value, every other column unchanged. Any other UPDATE is refused,
  and any UPDATE of a sealed event (one that has a `seq`). PostgreSQL still refuses DELETE.
- The chain head's `seq` only grows (a seal moves it by a whole batch); it never stays put,
  goes back or is deleted (PostgreSQL).

SQLite drops a table's triggers when a migration rebuilds the table, so the old ones are
removed first and the new ones installed after the schema changes, on both databases.
"""

from django.db import migrations, models

EVENT_REFUSED = "audit events are append-only"
HEAD_REFUSED = "the audit chain head only moves forward"

# Every column but the three the seal fills in: the seal must leave all of them as they were.
CONTENT_COLUMNS = [
    "id",
    "created_at",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "principal",
    "role",
    "scope",
    "role_request_id",
    "http_request_id",
    "ip",
    "before",
    "after",
    "message",
]


def _is_seal(same: str) -> str:
    """SQL true exactly when the UPDATE from OLD to NEW is a seal; `same` is null-safe '='."""
    unchanged = " AND ".join(f'NEW."{c}" {same} OLD."{c}"' for c in CONTENT_COLUMNS)
    return (
        "OLD.seq IS NULL AND NEW.seq IS NOT NULL "
        "AND OLD.prev_hash = '' AND OLD.hash = '' "
        "AND NEW.prev_hash <> '' AND NEW.hash <> '' "
        f"AND {unchanged}"
    )


POSTGRESQL_INSTALL = [
    f"""
    CREATE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND {_is_seal("IS NOT DISTINCT FROM")} THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION '{EVENT_REFUSED}: % of event % refused', TG_OP,
            COALESCE('#' || OLD.seq::text, 'id ' || OLD.id::text || ' (unsealed)')
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
        IF TG_OP = 'DELETE' OR NEW.seq <= OLD.seq THEN
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
    WHEN NOT ({_is_seal("IS")})
    BEGIN SELECT RAISE(ABORT, '{EVENT_REFUSED}: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER audit_auditchainhead_forward_only BEFORE UPDATE ON audit_auditchainhead
    WHEN NEW.seq <= OLD.seq
    BEGIN SELECT RAISE(ABORT, '{HEAD_REFUSED}: UPDATE refused'); END
    """,
]

SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_auditchainhead_forward_only",
    "DROP TRIGGER IF EXISTS audit_auditevent_append_only",
]

# What 0003 installed, put back when this migration is reversed.
PREVIOUS = "audit.migrations.0003_append_only_in_the_database"


def _run(schema_editor, statements: dict[str, list[str]]) -> None:
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql, params=None)


def remove(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRESQL_REMOVE, "sqlite": SQLITE_REMOVE})


def install(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRESQL_INSTALL, "sqlite": SQLITE_INSTALL})


def install_previous(apps, schema_editor):
    import importlib

    importlib.import_module(PREVIOUS).install(apps, schema_editor)


def remove_previous(apps, schema_editor):
    import importlib

    importlib.import_module(PREVIOUS).remove(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_append_only_in_the_database")]

    operations = [
        migrations.RunPython(remove_previous, install_previous, elidable=False),
        migrations.AlterModelOptions(
            name="auditevent",
            options={"base_manager_name": "objects", "ordering": ["-id"]},
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(
                blank=True, editable=False, null=True, unique=True
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("seq__isnull", True)),
                fields=["id", "created_at"],
                name="audit_event_unsealed",
            ),
        ),
        migrations.RunPython(install, remove, elidable=False),
    ]

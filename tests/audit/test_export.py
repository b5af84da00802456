"""Exports of the audit log: CSV and JSON lines, streamed, filtered, spreadsheet-safe, audited."""

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit import log as audit_log
from audit import queries
from audit.models import AuditEvent
from pim_portal.audit_views import CSV_COLUMNS
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db

CSV = "audit:export_csv"
JSONL = "audit:export_jsonl"


def event(action="pim.request.activated", **fields) -> AuditEvent:
    return audit_log.record(action=action, **fields)


def body(response) -> str:
    assert response.status_code == 200
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response))))


def jsonl_rows(response) -> list[dict]:
    return [json.loads(line) for line in body(response).splitlines()]


def exported_ids(rows) -> list[int]:
    return [int(row["id"]) for row in rows]


def written_events(count: int) -> None:
    """`count` events like the time engine's ends, made by the database in one statement
    (building 100,000 model instances would take most of the test's time)."""
    table = AuditEvent._meta.db_table
    numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s)"
    columns = (
        "created_at, actor_name, action, target_type, target_id, target_repr, principal, "
        "role, scope, http_request_id, before, after, message, prev_hash, hash"
    )
    values = (
        "%s, 'system (scheduler)', 'pim.assignment.ended', 'assignments.assignment', "
        "CAST(i AS VARCHAR(64)), 'Contributor for User ' || i || ' at Production', "
        "'User ' || i, 'Contributor', '/managementGroups/contoso/subscriptions/prod/', '', "
        '\'{"end": null}\', \'{"end": "2026-01-01T00:00:00Z"}\', '
        "'The assignment reached its end time; its access was removed at once.', '', ''"
    )
    with connection.cursor() as cursor:
        # The table's name only: nothing from outside.
        cursor.execute(
            f"INSERT INTO {table} ({columns}) {numbers} SELECT {values} FROM n",  # noqa: S608
            [count, timezone.now()],
        )


# CSV ---------------------------------------------------------------------------------------


def test_csv_export_has_every_field_newest_first(security_reader, pra, tree):
    first = event(actor=pra, role="Owner", scope=tree["sub"].path, role_request_id=3)
    second = event(action="pim.security.signin_failed", message="Failed sign-in as 'x'.")
    rows = csv_rows(signed_in(security_reader).get(reverse(CSV)))
    by_id = {int(row["id"]): row for row in rows}
    # The export's own event comes first: it is written before the rows are read.
    assert [row["action"] for row in rows][0] == "pim.audit.exported"
    assert exported_ids(rows)[1:3] == [second.pk, first.pk]
    row = by_id[first.pk]
    assert row["actor"] == "Pat Admin"
    assert row["actor id"] == str(pra.pk)
    assert row["activity"] == "Role activated"
    assert row["result"] == "success"
    assert row["role"] == "Owner"
    assert row["scope"] == tree["sub"].path
    assert row["request"] == "3"
    assert row["time (UTC)"] == first.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert by_id[second.pk]["result"] == "failure"


def test_csv_export_cells_cannot_run_as_formulas(security_reader):
    event(message='=HYPERLINK("http://evil")', principal="+SUM(A1)", role="@cmd")
    [row] = csv_rows(signed_in(security_reader).get(reverse(CSV), {"role": "@cmd"}))
    assert row["justification or message"].startswith("'=")
    assert row["principal"] == "'+SUM(A1)"
    assert row["role"] == "'@cmd"


def test_csv_export_writes_before_and_after_as_json(security_reader):
    event(before={"mfa": False}, after={"mfa": True}, role="Owner")
    [row] = csv_rows(signed_in(security_reader).get(reverse(CSV), {"role": "Owner"}))
    assert json.loads(row["before"]) == {"mfa": False}
    assert json.loads(row["after"]) == {"mfa": True}


def test_csv_export_is_a_download(security_reader):
    response = signed_in(security_reader).get(reverse(CSV))
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    assert response["Content-Disposition"].endswith('.csv"')


# JSON lines --------------------------------------------------------------------------------


def test_jsonl_export_is_one_event_a_line(security_reader, pra):
    written = event(actor=pra, role="Owner", before={"a": 1}, after={"a": 2})
    rows = jsonl_rows(signed_in(security_reader).get(reverse(JSONL), {"role": "Owner"}))
    assert len(rows) == 1
    [row] = rows
    assert row["id"] == written.pk
    assert row["actor_name"] == "Pat Admin"
    assert row["display"] == "Role activated"
    assert row["result"] == "success"
    assert row["before"] == {"a": 1} and row["after"] == {"a": 2}
    assert row["created_at"].endswith("Z")


def test_jsonl_export_is_a_download(security_reader):
    response = signed_in(security_reader).get(reverse(JSONL))
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert response["Content-Disposition"].endswith('.jsonl"')


# Filters and reach -------------------------------------------------------------------------


def test_export_applies_the_pages_filters(security_reader, tree):
    match = event(role="Owner", scope=tree["vm"].path, action="pim.request.approved")
    event(role="Owner", scope=tree["other_sub"].path, action="pim.request.approved")
    event(role="Reader", scope=tree["vm"].path, action="pim.request.approved")
    query = {"role": "Owner", "scope": tree["sub"].path, "action": "pim.request.approved"}
    client = signed_in(security_reader)
    assert exported_ids(csv_rows(client.get(reverse(CSV), query))) == [match.pk]
    assert exported_ids(jsonl_rows(client.get(reverse(JSONL), query))) == [match.pk]


def test_export_of_a_date_range_holds_only_that_range(security_reader):
    with time_machine.travel(timezone.now() - timedelta(days=2), tick=False):
        event(role="Owner")
    recent = event(role="Owner")
    query = {"period": "24h", "role": "Owner"}
    rows = csv_rows(signed_in(security_reader).get(reverse(CSV), query))
    assert exported_ids(rows) == [recent.pk]


def test_owner_exports_only_events_at_or_below_their_scopes(resource_owner, tree):
    below = event(scope=tree["vm"].path)
    event(scope=tree["other_sub"].path)
    event(scope="/")
    rows = csv_rows(signed_in(resource_owner).get(reverse(CSV)))
    assert exported_ids(rows) == [below.pk]


def test_eligible_user_may_not_export_the_audit_log(eligible_user):
    response = signed_in(eligible_user).get(reverse(CSV))
    assert response.status_code == 403
    refusal = AuditEvent.objects.get(action="pim.security.forbidden")
    assert refusal.message == "view the audit log"
    assert not AuditEvent.objects.filter(action="pim.audit.exported").exists()


def test_everyone_exports_their_own_events(eligible_user, pra):
    own = event(actor=eligible_user)
    event(actor=pra)
    query = {"mine": "1", "action": "pim.request.activated"}
    rows = jsonl_rows(signed_in(eligible_user).get(reverse(JSONL), query))
    assert exported_ids(rows) == [own.pk]


def test_the_exports_take_get_only(security_reader):
    client = signed_in(security_reader)
    assert client.post(reverse(CSV)).status_code == 405
    assert client.post(reverse(JSONL)).status_code == 405


# The export is audited ---------------------------------------------------------------------


def test_export_is_audited_with_its_filters(security_reader):
    signed_in(security_reader).get(reverse(CSV), {"role": "Owner", "request": "12"})
    exported = AuditEvent.objects.get(action="pim.audit.exported")
    assert exported.actor == security_reader
    assert exported.message == "Exported the audit log as CSV: role=Owner; request=12."


def test_export_of_own_events_is_audited_as_such(eligible_user):
    signed_in(eligible_user).get(reverse(JSONL), {"mine": "1"})
    exported = AuditEvent.objects.get(action="pim.audit.exported")
    assert exported.message == "Exported their own events as JSON lines: no filters (every event)."


def test_export_is_audited_before_the_first_row_is_read(security_reader):
    response = signed_in(security_reader).get(reverse(CSV))
    assert AuditEvent.objects.filter(action="pim.audit.exported").exists()
    response.close()


def test_export_names_a_date_range_in_its_audit_event(security_reader):
    signed_in(security_reader).get(reverse(CSV), {"from": "2026-01-01", "to": "2026-01-31"})
    exported = AuditEvent.objects.get(action="pim.audit.exported")
    assert "time=2026-01-01T00:00:00+00:00 to 2026-02-01T00:00:00+00:00 (custom)" in (
        exported.message
    )


# Keyset chunks -----------------------------------------------------------------------------


def test_export_reads_in_chunks_without_missing_or_repeating_a_row():
    written = [event(message=str(n)).pk for n in range(10)]
    exported = [row[0] for row in queries.export_rows(AuditEvent.objects.all(), chunk_size=3)]
    assert exported == written[::-1]


def test_export_leaves_out_events_written_while_it_runs():
    written = [event().pk for _ in range(5)]
    rows = queries.export_rows(AuditEvent.objects.all(), chunk_size=2)
    first = next(rows)
    event()  # written after the export began
    assert [first[0], *(row[0] for row in rows)] == written[::-1]


def test_export_of_an_empty_selection_is_the_header_only(security_reader):
    response = signed_in(security_reader).get(reverse(CSV), {"role": "Nobody"})
    assert list(csv.reader(io.StringIO(body(response)))) == [CSV_COLUMNS]


# A hundred thousand rows in constant memory ------------------------------------------------

# Holding the 100,000 rows (a list() of the queryset, or of the lines) takes 178 MiB of
# Python objects; streaming them a 2,000-row chunk at a time peaks near 5 MiB. The bound sits
# far from both, so it fails only when the export starts holding the rows it has sent.
STREAMING_PEAK = 20 * 1024 * 1024


def test_export_of_100000_events_runs_in_constant_memory(security_reader):
    written_events(100_000)
    response = signed_in(security_reader).get(reverse(CSV))
    assert response.streaming
    tracemalloc.start()
    try:
        lines = 0
        for chunk in response.streaming_content:
            lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines >= 100_000
    assert peak < STREAMING_PEAK, f"the export held {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("url_name", [CSV, JSONL])
def test_export_peak_memory_does_not_grow_with_rows(security_reader, url_name):
    """5,000 and 25,000 rows peak alike: the export holds a chunk, never the whole."""
    client = signed_in(security_reader)

    def peak_of_export() -> int:
        response = client.get(reverse(url_name))
        tracemalloc.start()
        try:
            for _ in response.streaming_content:
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    written_events(5_000)
    small = peak_of_export()
    written_events(20_000)
    large = peak_of_export()
    assert large < small * 1.5, f"{small / 2**20:.1f} MiB, then {large / 2**20:.1f} MiB"


def test_export_of_old_events_uses_their_utc_time(security_reader):
    moment = datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        event(role="Owner")
    [row] = csv_rows(signed_in(security_reader).get(reverse(CSV), {"role": "Owner"}))
    assert row["time (UTC)"] == "2026-01-02T03:04:05Z"

"""Retention: old events are pruned under a signed checkpoint, and the rest stays verifiable.

The history: three events and a checkpoint on day 0, two more and a checkpoint on day 20; the
retention is 30 days, so a prune on day 35 (cut: day 5) may delete events #1 to #3.
"""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import log as audit_log
from audit import retention, tasks
from audit.checkpoints import (
    CheckpointRefused,
    chain_verify,
    checkpoint_make,
    checkpoint_sign,
    signature_problem,
    signing_key,
    verify_keys,
)
from audit.models import AuditCheckpoint, AuditEvent
from audit.retention import Pruned, prune
from tests.audit.forgery import execute, forge, refused_by_database, rewrite_from, use_new_key

pytestmark = pytest.mark.django_db

DAY0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOT_PRUNED = "only events up to a prune checkpoint may be deleted"


@pytest.fixture
def history(settings) -> dict[int, AuditCheckpoint]:
    use_new_key(settings)
    settings.AUDIT_RETENTION_DAYS = 30
    made = {}
    for day, count in ((0, 3), (20, 2)):
        with time_machine.travel(DAY0 + timedelta(days=day), tick=False):
            _write(count)
            checkpoint = checkpoint_make()
            made[checkpoint.seq] = checkpoint
    return made


def _write(count: int) -> None:
    for n in range(count):
        audit_log.record(action="pim.test.event", message=f"event {n}")
    audit_log.seal()


def _on_day(day: int, work=prune):
    with time_machine.travel(DAY0 + timedelta(days=day), tick=False):
        return work()


def _sealed_seqs() -> list[int]:
    return list(
        AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values_list("seq", flat=True)
    )


# What is pruned ----------------------------------------------------------------------------


def test_nothing_is_pruned_without_a_retention_setting(history, settings):
    settings.AUDIT_RETENTION_DAYS = None
    assert _on_day(400) == Pruned()
    assert _sealed_seqs() == [1, 2, 3, 4, 5]


def test_nothing_is_pruned_without_a_signing_key(history, settings):
    settings.AUDIT_SIGNING_KEY = ""
    assert _on_day(35) == Pruned(refused="no signing key is configured")
    assert _sealed_seqs() == [1, 2, 3, 4, 5]


def test_prune_deletes_the_events_up_to_the_newest_checkpoint_before_the_cut(history):
    assert _on_day(35) == Pruned(deleted=3, up_to_seq=3)
    assert _sealed_seqs() == [4, 5]


def test_events_older_than_the_cut_wait_for_a_checkpoint_to_cover_them(history):
    with time_machine.travel(DAY0 + timedelta(days=1), tick=False):
        _write(1)  # #6, on day 1; the next checkpoint is made on day 35, by the prune
    assert _on_day(35) == Pruned(deleted=3, up_to_seq=3)
    assert 6 in _sealed_seqs()


def test_nothing_is_pruned_before_a_checkpoint_is_older_than_the_retention(history):
    assert _on_day(29) == Pruned()
    assert _sealed_seqs()[0] == 1


def test_prune_signs_a_prune_checkpoint_of_the_pruned_head(history):
    _on_day(35)
    marker = AuditCheckpoint.objects.get(prunes_up_to=True)
    assert (marker.seq, marker.head_hash) == (3, history[3].head_hash)
    assert marker.created_at == DAY0 + timedelta(days=35)
    assert signature_problem(marker, verify_keys()) == ""


def test_prune_signs_the_head_first(history):
    with time_machine.travel(DAY0 + timedelta(days=34), tick=False):
        _write(1)
    _on_day(35)
    assert AuditCheckpoint.objects.filter(seq=6, prunes_up_to=False).exists()


def test_prune_is_audited(history):
    _on_day(35)
    event = AuditEvent.objects.get(action=retention.PRUNED)
    assert event.actor_name == "system (audit retention)"
    assert (event.after["deleted"], event.after["up_to_seq"]) == (3, 3)
    assert event.after["retention_days"] == 30
    assert event.message == "3 audit events up to #3 pruned: older than 30 days."
    assert event.target_type == "audit.auditcheckpoint"


def test_second_prune_deletes_nothing_more(history):
    _on_day(35)
    assert _on_day(36) == Pruned()
    assert AuditCheckpoint.objects.filter(prunes_up_to=True).count() == 1
    assert AuditEvent.objects.filter(action=retention.PRUNED).count() == 1


def test_prune_deletes_in_batches(history, monkeypatch):
    monkeypatch.setattr(retention, "DELETE_BATCH", 2)
    with CaptureQueriesContext(connection) as queries:
        assert _on_day(35).deleted == 3
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE FROM")]
    assert len(deletes) == 2


def test_prune_task_reports_what_it_did(history):
    assert _on_day(35, tasks.prune) == {"deleted": 3, "up_to_seq": 3, "refused": ""}


# What stays verifiable ---------------------------------------------------------------------


def test_chain_verifies_from_the_first_remaining_event_after_a_prune(history):
    _on_day(35)
    record = chain_verify().record
    # #4, #5 and the prune's own event, #6.
    assert (record.ok, record.checked, record.up_to_seq, record.problem) == (True, 3, 6, "")


def test_verify_command_says_which_events_were_pruned(history):
    _on_day(35)
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert "Audit chain intact: 3 events verified." in out.getvalue()
    assert "Events up to #3 were pruned by the retention" in out.getvalue()


def test_checkpoints_carry_on_after_a_prune(history):
    _on_day(35)
    with time_machine.travel(DAY0 + timedelta(days=36), tick=False):
        _write(2)
        assert checkpoint_make().seq == 8
    assert chain_verify().ok


def test_an_interrupted_prune_verifies_and_resumes(history):
    # The prune checkpoint is signed and the first batch deleted, then the worker died.
    with time_machine.travel(DAY0 + timedelta(days=35), tick=False):
        checkpoint_sign(
            key=signing_key(),
            seq=3,
            head_hash=history[3].head_hash,
            now=DAY0 + timedelta(days=35),
            prunes_up_to=True,
        )
    execute("DELETE FROM audit_auditevent WHERE seq = 1")
    assert chain_verify().ok
    assert _on_day(36) == Pruned(deleted=2, up_to_seq=3)
    assert chain_verify().ok


def test_a_deleted_prune_checkpoint_leaves_the_start_of_the_chain_missing(history):
    _on_day(35)
    AuditCheckpoint.objects.filter(prunes_up_to=True).delete()
    problem = chain_verify().record.problem
    assert "event #1 is missing (next found is #4)" in problem


def test_events_deleted_beyond_the_prune_are_reported(history):
    _on_day(35)
    forge("DELETE FROM audit_auditevent WHERE seq = 4")
    assert "event #4 is missing (next found is #5)" in chain_verify().record.problem


# What is refused ---------------------------------------------------------------------------


def test_prune_refuses_events_that_do_not_link_up_to_their_checkpoint(history):
    forge("UPDATE audit_auditevent SET message = %s WHERE seq = %s", "nothing happened", 2)
    assert _on_day(35) == Pruned(refused="event #2 was modified after it was written")
    assert _sealed_seqs() == [1, 2, 3, 4, 5]


def test_prune_refuses_a_chain_rewritten_since_its_last_checkpoint(history):
    rewrite_from(2)
    with pytest.raises(CheckpointRefused, match="does not extend the signed checkpoint"):
        _on_day(35)
    assert _sealed_seqs() == [1, 2, 3, 4, 5]


def test_database_refuses_to_delete_an_event_beyond_the_prune(history):
    _on_day(35)
    message = refused_by_database("DELETE FROM audit_auditevent WHERE seq = 5")
    assert "audit events are append-only" in message and NOT_PRUNED in message
    assert _sealed_seqs() == [4, 5]


@pytest.mark.postgres
def test_database_refuses_to_delete_the_first_event_beyond_the_prune_on_postgresql(history):
    # SQLite lets the oldest row left go (Django flushes it with DELETE FROM, oldest first).
    _on_day(35)
    assert NOT_PRUNED in refused_by_database("DELETE FROM audit_auditevent WHERE seq = 4")


def test_database_refuses_a_delete_that_only_an_ordinary_checkpoint_covers(history):
    message = refused_by_database("DELETE FROM audit_auditevent WHERE seq = 2")
    assert NOT_PRUNED in message
    assert _sealed_seqs() == [1, 2, 3, 4, 5]


def test_database_allows_deleting_the_events_a_prune_checkpoint_covers(history):
    checkpoint_sign(
        key=signing_key(),
        seq=3,
        head_hash=history[3].head_hash,
        now=DAY0 + timedelta(days=35),
        prunes_up_to=True,
    )
    execute("DELETE FROM audit_auditevent WHERE seq >= 2 AND seq <= 3")
    assert _sealed_seqs() == [1, 4, 5]


def test_database_refuses_to_delete_an_unsealed_event_even_under_a_prune(history):
    checkpoint_sign(
        key=signing_key(), seq=5, head_hash=history[5].head_hash, now=DAY0, prunes_up_to=True
    )
    unsealed = audit_log.record(action="pim.test.event", message="not sealed yet")
    message = refused_by_database("DELETE FROM audit_auditevent WHERE id = %s", unsealed.pk)
    assert NOT_PRUNED in message


def test_events_the_siem_has_not_received_are_not_pruned(history, settings, tmp_path):
    """A SIEM target that was down for the whole retention period still gets every event:
    with the stream at #2, only events up to a checkpoint at or before #2 may go (none is)."""
    from audit.models import AuditStreamCursor

    settings.AUDIT_JSONL_PATH = str(tmp_path / "siem.jsonl")
    AuditStreamCursor.objects.update_or_create(pk=1, defaults={"seq": 2})
    assert _on_day(35) == Pruned()
    assert _sealed_seqs()[0] == 1
    AuditStreamCursor.objects.filter(pk=1).update(seq=3)  # the stream caught up to #3
    assert _on_day(35) == Pruned(deleted=3, up_to_seq=3)

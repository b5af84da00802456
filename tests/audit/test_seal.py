"""Writers only insert; the sealer links committed events into the chain, in short batches.

What an audited write costs (one INSERT, no lock), what a seal does (every event once, oldest
first, a handful of queries), the one update the guards let through, what tampering around the
sealer is caught, and (PostgreSQL) that writers of different users no longer queue behind one
lock while concurrent writers and sealers still make one gap-free chain.
"""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from audit import log as audit_log
from audit.apps import SEAL_WORK
from audit.log import verify_chain
from audit.models import GENESIS_HASH, AppendOnlyError, AuditChainHead, AuditEvent
from pim_portal import timekeeper
from tests.audit.forgery import execute, forge, forged_event, insert, refused_by_database
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _record(n: int, **kw) -> AuditEvent:
    return audit_log.record(action="pim.test.event", message=f"event {n}", **kw)


def _unsealed() -> int:
    return AuditEvent.objects.filter(seq__isnull=True).count()


def _sealed_in_seq_order() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__isnull=False).order_by("seq"))


# Writing -----------------------------------------------------------------------------------


def test_record_is_one_insert_and_leaves_the_event_unsealed(django_assert_num_queries):
    with django_assert_num_queries(1):
        event = _record(1)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.seq, stored.prev_hash, stored.hash) == (None, "", "")
    assert not stored.sealed
    assert AuditChainHead.objects.count() == 0  # writers never touch the head


def test_record_many_is_one_insert_for_a_batch_of_200():
    ann = make_user("ann")
    batch = [
        {
            "action": "pim.assignment.ended",
            "actor": ann,
            "message": f"end {n}",
            "role_request_id": n,
        }
        for n in range(200)
    ]
    with CaptureQueriesContext(connection) as queries:
        events = audit_log.record_many(batch)
    # One INSERT on PostgreSQL; SQLite's 999 parameters cut it into INSERTs of 58 rows.
    expected = 1 if connection.vendor == "postgresql" else 4
    assert [q["sql"].split()[0] for q in queries] == ["INSERT"] * expected
    stored = list(AuditEvent.objects.order_by("id"))
    assert [e.message for e in stored] == [f"end {n}" for n in range(200)]
    assert [e.pk for e in events] == [e.pk for e in stored]
    assert all(e.seq is None and e.hash == "" for e in stored)


def test_record_many_stores_what_record_stores():
    ann = make_user("ann")
    fields = {
        "action": "pim.assignment.ended",
        "actor": ann,
        "target": ann,
        "principal": "Ann",
        "role": "Reader",
        "scope": "/",
        "role_request_id": 7,
        "before": {"end": None},
        "after": {"end": "2026-01-01T00:00:00Z"},
        "message": "ended",
    }
    one = AuditEvent.objects.get(pk=audit_log.record(**fields).pk)
    [many] = audit_log.record_many([fields])
    many = AuditEvent.objects.get(pk=many.pk)
    columns = [f.attname for f in AuditEvent._meta.concrete_fields if f.name not in ("id",)]
    differing = {c for c in columns if getattr(one, c) != getattr(many, c)}
    assert differing <= {"created_at"}
    assert verify_chain() == (2, None)


# Sealing -----------------------------------------------------------------------------------


def test_seal_links_committed_events_oldest_first_from_the_genesis_hash():
    written = [_record(n) for n in (1, 2, 3)]
    assert audit_log.seal() == 3
    first, second, third = _sealed_in_seq_order()
    assert [e.pk for e in (first, second, third)] == [e.pk for e in written]
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert first.prev_hash == GENESIS_HASH
    assert (second.prev_hash, third.prev_hash) == (first.hash, second.hash)
    assert all(e.compute_hash() == e.hash for e in (first, second, third))
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (3, third.hash)


def test_seal_continues_the_chain_and_seals_each_event_once():
    _record(1)
    _record(2)
    assert audit_log.seal() == 2
    assert audit_log.seal() == 0
    _record(3)
    assert audit_log.seal() == 1
    assert [e.seq for e in _sealed_in_seq_order()] == [1, 2, 3]
    assert _sealed_in_seq_order()[2].prev_hash == _sealed_in_seq_order()[1].hash
    assert verify_chain() == (3, None)


def test_seal_takes_at_most_its_limit_the_oldest_first():
    written = [_record(n) for n in range(1, 6)]
    assert audit_log.seal(limit=2) == 2
    assert [e.pk for e in _sealed_in_seq_order()] == [e.pk for e in written[:2]]
    assert _unsealed() == 3
    assert audit_log.seal(limit=2) == 2
    assert audit_log.seal(limit=2) == 1
    assert verify_chain() == (5, None)


def test_a_seal_of_1000_events_is_a_handful_of_queries():
    audit_log.record_many(
        [{"action": "pim.test.event", "message": f"event {n}"} for n in range(1000)]
    )
    audit_log.seal(limit=1)  # the head exists from here on, as it does in a running system
    with CaptureQueriesContext(connection) as queries:
        assert audit_log.seal(limit=1000) == 999
    # Lock the head, read the batch, 1 UPDATE (PostgreSQL) or 5 (SQLite's 999 parameters),
    # move the head, and the savepoint around it.
    assert len(queries) <= 10, [q["sql"][:80] for q in queries]
    assert _unsealed() == 0
    assert verify_chain() == (1000, None)


def test_the_model_still_refuses_to_unseal_an_event():
    event = _record(1)
    audit_log.seal()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(seq=None, prev_hash="", hash="")


def test_seal_does_not_restart_a_chain_whose_head_is_missing():
    _record(1)
    audit_log.seal()
    forge("DELETE FROM audit_auditchainhead")
    _record(2)
    assert audit_log.seal() == 0
    assert _unsealed() == 1
    assert verify_chain() == (1, "the chain head is missing but there are 1 events")


def test_verify_seals_what_is_committed_first():
    for n in range(1, 4):
        _record(n)
    assert verify_chain() == (3, None)
    assert _unsealed() == 0


# The time engine ---------------------------------------------------------------------------


def test_the_seal_is_due_work_from_the_oldest_unsealed_event():
    work = timekeeper._registry[SEAL_WORK]
    assert work.next_due() is None
    first = _record(1)
    _record(2)
    assert work.next_due() == AuditEvent.objects.get(pk=first.pk).created_at
    assert timekeeper.run_due(SEAL_WORK, limit=1) == 1
    assert work.next_due() == AuditEvent.objects.filter(seq__isnull=True).get().created_at
    assert timekeeper.run_due(SEAL_WORK) == 1
    assert work.next_due() is None
    assert timekeeper.run_due(SEAL_WORK) == 0
    assert verify_chain() == (2, None)


def test_next_due_reads_the_partial_index_of_unsealed_events():
    index = {i.name: i for i in AuditEvent._meta.indexes}["audit_event_unsealed"]
    assert index.fields == ["id", "created_at"]
    assert str(index.condition) == "(AND: ('seq__isnull', True))"


# The database's guard: exactly the seal gets through ---------------------------------------

# A value of the right type for each column the seal must leave alone.
CHANGED = {
    "id": 10**9,
    "created_at": datetime(2001, 1, 1, tzinfo=UTC),
    "actor_id": 4242,
    "actor_name": "someone else",
    "action": "pim.test.other",
    "target_type": "auth.user",
    "target_id": "99",
    "target_repr": "someone else",
    "principal": "someone else",
    "role": "Global Administrator",
    "scope": "/elsewhere",
    "role_request_id": 4242,
    "http_request_id": "00000000-0000-0000-0000-000000000000",
    "ip": "198.51.100.9",
    "before": '{"forged": true}',
    "after": '{"forged": true}',
    "message": "forged",
}


def test_every_column_but_the_seals_is_guarded():
    seal_columns = {"seq", "prev_hash", "hash"}
    columns = {f.column for f in AuditEvent._meta.concrete_fields} - seal_columns
    assert columns == set(CHANGED)


def test_database_allows_the_seal_of_an_unsealed_event():
    event = _record(1)
    execute(
        "UPDATE audit_auditevent SET seq = 1, prev_hash = %s, hash = %s WHERE id = %s",
        GENESIS_HASH,
        "a" * 64,
        event.pk,
    )
    assert AuditEvent.objects.get(pk=event.pk).seq == 1


@pytest.mark.parametrize("column", sorted(CHANGED))
def test_database_refuses_a_seal_that_also_changes_a_column(column):
    event = _record(1)
    message = refused_by_database(
        f'UPDATE audit_auditevent SET seq = 1, prev_hash = %s, hash = %s, "{column}" = %s '
        "WHERE id = %s",
        GENESIS_HASH,
        "a" * 64,
        CHANGED[column],
        event.pk,
    )
    assert "audit events are append-only" in message
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.seq, stored.message) == (None, "event 1")


def test_database_refuses_to_change_an_unsealed_event():
    event = _record(1)
    message = refused_by_database(
        "UPDATE audit_auditevent SET message = %s WHERE id = %s", "forged", event.pk
    )
    assert "audit events are append-only" in message


@pytest.mark.parametrize(
    "change",
    ["seq = 1", "seq = 1, prev_hash = '{g}'", "seq = 1, hash = 'aa'", "prev_hash = '{g}'"],
    ids=["seq-only", "no-hash", "no-prev-hash", "no-seq"],
)
def test_database_refuses_half_a_seal(change):
    event = _record(1)
    sql = f"UPDATE audit_auditevent SET {change.format(g=GENESIS_HASH)} WHERE id = %s"
    assert "audit events are append-only" in refused_by_database(sql, event.pk)


@pytest.mark.parametrize(
    "change",
    ["seq = 7", "seq = NULL, prev_hash = '', hash = ''", "hash = 'aa'"],
    ids=["re-seal", "unseal", "re-hash"],
)
def test_database_refuses_any_update_of_a_sealed_event(change):
    event = _record(1)
    audit_log.seal()
    sql = f"UPDATE audit_auditevent SET {change} WHERE id = %s"
    assert "audit events are append-only" in refused_by_database(sql, event.pk)
    assert verify_chain() == (1, None)


def test_database_lets_the_head_move_forward_by_a_whole_batch():
    for n in range(1, 6):
        _record(n)
    audit_log.seal(limit=1)
    assert audit_log.seal(limit=4) == 4  # the head moves from #1 to #5 in one UPDATE
    assert AuditChainHead.objects.get().seq == 5


def test_database_refuses_a_head_that_stays_put():
    _record(1)
    audit_log.seal()
    message = refused_by_database("UPDATE audit_auditchainhead SET seq = seq WHERE id = 1")
    assert "the audit chain head only moves forward" in message


@pytest.mark.postgres
def test_database_refuses_to_delete_an_unsealed_event_on_postgresql_only():
    event = _record(1)
    message = refused_by_database("DELETE FROM audit_auditevent WHERE id = %s", event.pk)
    assert "audit events are append-only" in message
    assert "(unsealed)" in message


# Tampering around the sealer ---------------------------------------------------------------


def _three_sealed() -> list[AuditEvent]:
    for n in (1, 2, 3):
        _record(n)
    audit_log.seal()
    return _sealed_in_seq_order()


def test_event_forged_into_the_middle_breaks_the_next_link():
    first, second, _ = _three_sealed()
    forge("UPDATE audit_auditevent SET seq = seq + 10 WHERE seq >= 2")
    forge("UPDATE audit_auditevent SET seq = seq - 9 WHERE seq >= 12")  # 2 -> 3, 3 -> 4
    insert(forged_event(first, message="granted myself Global Administrator"))
    forge("UPDATE audit_auditchainhead SET seq = 4 WHERE id = 1")
    assert verify_chain() == (2, "event #3 does not link to event #2")


def test_event_placed_beyond_the_head_is_reported():
    *_, last = _three_sealed()
    insert(forged_event(last, message="granted myself Global Administrator"))
    checked, broken = verify_chain()
    assert checked == 3
    assert broken == "event #4 lies beyond the chain head: it was not sealed into the chain"


def test_sealed_event_turned_back_into_an_unsealed_one_leaves_a_gap():
    _, second, _ = _three_sealed()
    forge(
        "UPDATE audit_auditevent SET seq = NULL, prev_hash = '', hash = '' WHERE id = %s",
        second.pk,
    )
    # verify seals it again, at the end: the gap where it was stays.
    assert verify_chain() == (1, "event #2 is missing (next found is #3)")


def test_an_unsealed_event_is_guarded_by_the_triggers_not_yet_by_the_chain():
    # Before its seal an event is only as safe as the table: the triggers guard it, the chain
    # does not cover it yet. The seal follows commit within seconds (the time engine).
    event = _record(1)
    if connection.vendor == "postgresql":
        refused_by_database("DELETE FROM audit_auditevent WHERE id = %s", event.pk)
    forge("DELETE FROM audit_auditevent WHERE id = %s", event.pk)
    assert verify_chain() == (0, None)


# Concurrency (PostgreSQL: real transactions side by side) ----------------------------------


def _thread(target, errors):
    def run():
        try:
            target()
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    return threading.Thread(target=run)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_open_transactions_write_audit_events_side_by_side():
    """Today's second writer would wait on the head lock until the first commits: it fails."""
    first_written, second_written = threading.Event(), threading.Event()
    errors: list = []

    def first():
        with transaction.atomic():
            _record(1, actor=None)
            first_written.set()
            # Hold the transaction open until the other one has written too.
            assert second_written.wait(10), "the second writer queued behind the first"

    def second():
        assert first_written.wait(10)
        with transaction.atomic():
            execute("SET LOCAL lock_timeout = '3s'")  # a lock wait fails instead of hanging
            _record(2, actor=None)
            second_written.set()

    threads = [_thread(first, errors), _thread(second, errors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert AuditEvent.objects.count() == 2
    assert verify_chain() == (2, None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_seal_leaves_uncommitted_events_and_skips_a_head_another_sealer_holds():
    written, sealed_meanwhile, release = threading.Event(), [], threading.Event()
    errors: list = []

    def writer():
        with transaction.atomic():
            _record(1)
            written.set()
            assert release.wait(10)

    thread = _thread(writer, errors)
    thread.start()
    assert written.wait(10)
    sealed_meanwhile.append(audit_log.seal())  # the open transaction's event is not seen
    release.set()
    thread.join(30)
    assert errors == [] and sealed_meanwhile == [0]
    assert audit_log.seal() == 1  # committed now
    _record(2)

    head_locked, release_head = threading.Event(), threading.Event()

    def other_sealer():
        with transaction.atomic():
            AuditChainHead.objects.select_for_update().get(pk=1)
            head_locked.set()
            assert release_head.wait(10)

    thread = _thread(other_sealer, errors)
    thread.start()
    assert head_locked.wait(10)
    sealed_meanwhile.append(audit_log.seal())  # returns at once, leaving the work to it
    release_head.set()
    thread.join(30)
    assert errors == [] and sealed_meanwhile == [0, 0]
    assert audit_log.seal() == 1
    assert verify_chain() == (2, None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_and_sealers_make_one_gap_free_chain():
    writers, per_writer, sealers = 8, 15, 2
    start = threading.Barrier(writers + sealers)
    writers_done = threading.Event()
    errors: list = []
    sealed_by: list[int] = []

    def writer(n):
        start.wait()
        for i in range(per_writer):
            with transaction.atomic():
                _record(i, actor=None)
                if i % 2:
                    audit_log.record_many(
                        [{"action": "pim.test.batch", "message": f"w{n} b{i} {k}"} for k in (0, 1)]
                    )

    def sealer():
        start.wait()
        while not writers_done.is_set():
            sealed_by.append(audit_log.seal(limit=7))

    writer_threads = [_thread(lambda n=n: writer(n), errors) for n in range(writers)]
    sealer_threads = [_thread(sealer, errors) for _ in range(sealers)]
    for thread in writer_threads + sealer_threads:
        thread.start()
    for thread in writer_threads:
        thread.join(60)
    writers_done.set()
    for thread in sealer_threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in writer_threads + sealer_threads)
    assert errors == []
    assert sum(sealed_by) > 0  # the sealers worked while the writers wrote

    total = writers * (per_writer + 2 * (per_writer // 2))
    assert AuditEvent.objects.count() == total
    sealed_by.append(audit_log.seal_all())
    assert sum(sealed_by) == total  # every event sealed exactly once
    assert _unsealed() == 0
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))
    assert verify_chain() == (total, None)

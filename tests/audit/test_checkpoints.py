"""Signed checkpoints: a chain rewritten by whoever owns the tables contradicts them.

The forgeries lift the database's guard the way its owner can (tests/audit/forgery.py); the
checkpoints' key is what they do not have.
"""

import base64
import hashlib
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connections
from django_q.models import Schedule

from audit import log as audit_log
from audit import tasks
from audit.checkpoints import (
    CheckpointRefused,
    chain_verify,
    checkpoint_json,
    checkpoint_make,
    checkpoint_sign,
    describe,
    key_id,
    signed_statement,
    signing_key,
    verify_keys,
)
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent, ChainVerification
from tests.audit.forgery import (
    cut_range,
    cut_tail,
    forge,
    raw_base64,
    rewrite_from,
    use_new_key,
)

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def key(settings) -> Ed25519PrivateKey:
    return use_new_key(settings)


@pytest.fixture
def no_key(settings) -> None:
    use_new_key(settings)
    settings.AUDIT_SIGNING_KEY = ""


def _write(count: int) -> None:
    for n in range(count):
        audit_log.record(action="pim.test.event", message=f"event {n}")
    audit_log.seal()


def _chain_with_checkpoints_at_2_4_and_6() -> dict[int, AuditCheckpoint]:
    """Eight events; a checkpoint made after the 2nd, the 4th and the 6th, a minute apart."""
    made = {}
    for minute, seq in enumerate((2, 4, 6)):
        _write(2)
        made[seq] = checkpoint_make(MONDAY + timedelta(minutes=minute))
    _write(2)
    return made


def _verify() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def _broken() -> str:
    with pytest.raises(CommandError) as failed:
        _verify()
    return str(failed.value)


# Keys --------------------------------------------------------------------------------------


def test_key_id_is_the_sha256_of_the_raw_public_key(key):
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(key.public_key()) == hashlib.sha256(raw).hexdigest()


def test_signing_key_is_read_from_a_pkcs8_pem_file(settings, tmp_path):
    call_command("audit_keys", out=str(tmp_path), stdout=StringIO())
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "audit-signing-key.pem")
    public = serialization.load_pem_public_key((tmp_path / "audit-verify-key.pem").read_bytes())
    assert key_id(signing_key().public_key()) == key_id(public)


def test_audit_keys_writes_the_private_key_readable_by_its_owner_only(tmp_path):
    out = StringIO()
    call_command("audit_keys", out=str(tmp_path / "keys"), stdout=out)
    assert os.stat(tmp_path / "keys" / "audit-signing-key.pem").st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "keys" / "audit-verify-key.pem").st_mode & 0o777 == 0o644
    assert "AUDIT_SIGNING_KEY_FILE=" in out.getvalue()
    assert "AUDIT_SIGNING_KEY=" not in out.getvalue()  # the secret only with --show-env


def test_audit_keys_refuses_to_overwrite_a_key(tmp_path):
    call_command("audit_keys", out=str(tmp_path), stdout=StringIO())
    with pytest.raises(CommandError, match="exists: not overwriting a key"):
        call_command("audit_keys", out=str(tmp_path), stdout=StringIO())


def test_audit_keys_prints_the_keys_for_the_environment_on_request(settings, tmp_path):
    out = StringIO()
    call_command("audit_keys", out=str(tmp_path), show_env=True, stdout=out)
    lines = dict(line.split("=", 1) for line in out.getvalue().splitlines() if "=" in line)
    settings.AUDIT_SIGNING_KEY = lines["AUDIT_SIGNING_KEY"]
    assert raw_base64(signing_key().public_key()) == lines["AUDIT_VERIFY_KEY"]


def test_a_signing_key_that_is_not_base64_of_32_bytes_fails_loudly(settings):
    settings.AUDIT_SIGNING_KEY = base64.b64encode(b"too short").decode()
    with pytest.raises(ImproperlyConfigured, match="must be the raw 32-byte key, base64"):
        signing_key()


def test_a_signing_key_in_both_settings_is_refused(settings, key, tmp_path):
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "key.pem")
    with pytest.raises(ImproperlyConfigured, match="not both"):
        signing_key()


def test_a_verify_key_file_may_hold_the_old_keys_of_a_rotation(settings, tmp_path):
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pems = b"".join(
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for k in (old, new)
    )
    (tmp_path / "verify.pem").write_bytes(pems)
    settings.AUDIT_VERIFY_KEY_FILE = str(tmp_path / "verify.pem")
    assert set(verify_keys()) == {key_id(old.public_key()), key_id(new.public_key())}


# Making checkpoints ------------------------------------------------------------------------


def test_checkpoint_signs_the_heads_seq_hash_and_time(key):
    _write(3)
    made = checkpoint_make(MONDAY)
    head = AuditChainHead.objects.get()
    stored = AuditCheckpoint.objects.get()
    assert (stored.seq, stored.head_hash, stored.created_at) == (3, head.hash, MONDAY)
    assert stored.key_id == key_id(key.public_key()) and not stored.prunes_up_to
    # Raises InvalidSignature unless the key signed exactly this statement.
    key.public_key().verify(base64.b64decode(stored.signature), signed_statement(stored))
    assert made == stored


def test_checkpoint_seals_what_is_committed_first(key):
    for n in range(2):
        audit_log.record(action="pim.test.event", message=f"event {n}")
    assert checkpoint_make(MONDAY).seq == 2
    assert not AuditEvent.objects.filter(seq__isnull=True).exists()


def test_no_checkpoint_is_made_without_a_key(no_key):
    _write(2)
    assert checkpoint_make(MONDAY) is None
    assert not AuditCheckpoint.objects.exists()


def test_no_checkpoint_is_made_of_an_empty_chain(key):
    assert checkpoint_make(MONDAY) is None


def test_no_checkpoint_is_made_when_the_head_did_not_move(key):
    _write(2)
    checkpoint_make(MONDAY)
    assert checkpoint_make(MONDAY + timedelta(minutes=5)) is None
    assert AuditCheckpoint.objects.count() == 1


def test_a_moved_head_gets_a_new_checkpoint(key):
    _write(2)
    checkpoint_make(MONDAY)
    _write(1)
    assert checkpoint_make(MONDAY + timedelta(minutes=5)).seq == 3


def test_checkpoint_task_twice_without_new_events_makes_one_checkpoint(key):
    _write(2)
    assert tasks.checkpoint()["seq"] == 2
    assert tasks.checkpoint() == {"checkpoint": None, "seq": None}
    assert AuditCheckpoint.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_checkpoint_makers_at_once_make_one_checkpoint(key):
    _write(3)
    start = threading.Barrier(2)
    made, errors = [], []

    def maker():
        try:
            start.wait()
            made.append(checkpoint_make())
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=maker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(m is None for m in made) == [False, True]
    assert AuditCheckpoint.objects.count() == 1


def test_checkpoint_is_appended_to_the_checkpoint_file(
    key, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    _write(2)
    with django_capture_on_commit_callbacks(execute=True):
        made = checkpoint_make(MONDAY)
    [line] = (tmp_path / "checkpoints.jsonl").read_text().splitlines()
    assert json.loads(line) == {
        "seq": 2,
        "head_hash": made.head_hash,
        "created_at": "2026-03-02T09:00:00+00:00",
        "key_id": made.key_id,
        "signature": made.signature,
        "prunes_up_to": False,
    }


def test_checkpoint_is_sent_to_the_siem_stream(
    key, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.AUDIT_JSONL_PATH = str(tmp_path / "siem.jsonl")
    _write(2)
    with django_capture_on_commit_callbacks(execute=True):
        made = checkpoint_make(MONDAY)
    sent = [json.loads(line) for line in (tmp_path / "siem.jsonl").read_text().splitlines()]
    [document] = [d for d in sent if d.get("type") == "checkpoint"]
    assert (document["seq"], document["signature"]) == (2, made.signature)


def test_a_chain_rewritten_behind_the_last_checkpoint_is_not_signed(key):
    _write(3)
    checkpoint_make(MONDAY)
    rewrite_from(2)
    _write(1)
    with pytest.raises(CheckpointRefused, match="event #4 does not link to the signed checkpoint"):
        checkpoint_make(MONDAY + timedelta(minutes=5))
    assert AuditCheckpoint.objects.count() == 1


def test_a_chain_cut_back_behind_the_last_checkpoint_is_not_signed(key):
    _write(3)
    checkpoint_make(MONDAY)
    cut_tail(3)
    with pytest.raises(
        CheckpointRefused, match="its head #2 does not extend the signed checkpoint"
    ):
        checkpoint_make(MONDAY + timedelta(minutes=5))


def test_audit_checkpoint_command_signs_the_head_on_demand(key):
    _write(2)
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    assert "Made the signed checkpoint of event #2" in out.getvalue()


def test_audit_checkpoint_command_without_a_key_says_so(no_key):
    with pytest.raises(CommandError, match="No signing key is configured"):
        call_command("audit_checkpoint", stdout=StringIO())


# Verification ------------------------------------------------------------------------------


def test_verification_of_a_good_chain_is_recorded(key):
    _chain_with_checkpoints_at_2_4_and_6()
    with time_machine.travel(MONDAY + timedelta(hours=1), tick=False):
        verified = chain_verify()
    record = ChainVerification.objects.get()
    assert verified.record == record
    last = AuditEvent.objects.get(seq=8)
    assert (record.ok, record.checked, record.checkpoints, record.problem) == (True, 8, 3, "")
    assert (record.up_to_seq, record.up_to_at) == (8, last.created_at)
    assert record.ran_at == MONDAY + timedelta(hours=1)


def test_verify_command_reports_the_checkpoints_it_verified(key):
    _chain_with_checkpoints_at_2_4_and_6()
    report = _verify()
    assert "Audit chain intact: 8 events verified." in report
    assert (
        "Signed checkpoints: 3 verified; the newest is the signed checkpoint of event #6 " in report
    )


def test_verify_without_a_key_says_checkpoints_are_not_configured(no_key):
    _write(2)
    report = _verify()
    assert "Audit chain intact: 2 events verified." in report
    assert "Signed checkpoints are not configured" in report
    assert ChainVerification.objects.get().checkpoints == 0


def test_verification_needs_only_the_public_key(key, settings):
    _chain_with_checkpoints_at_2_4_and_6()
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_VERIFY_KEY = raw_base64(key.public_key())
    assert chain_verify().record.checkpoints == 3


def test_failed_verification_is_recorded_with_its_problem(key):
    made = _chain_with_checkpoints_at_2_4_and_6()
    rewrite_from(3)
    record = chain_verify().record
    assert not record.ok
    assert describe(made[4]) in record.problem
    # What a checkpoint still vouches for: up to the one before the first contradicted.
    assert (record.up_to_seq, record.checkpoints) == (2, 1)


def test_full_rewrite_contradicts_the_first_checkpoint_after_the_edit(key):
    made = _chain_with_checkpoints_at_2_4_and_6()
    rewrite_from(3)
    assert chain_verify().first_contradicted == made[4]
    message = _broken()
    assert f"the {describe(made[4])} says its hash is {made[4].head_hash[:12]}..." in message
    assert "events up to #4 were changed, removed or inserted" in message


def test_full_rewrite_from_the_first_event_contradicts_the_first_checkpoint(key):
    made = _chain_with_checkpoints_at_2_4_and_6()
    rewrite_from(1)
    assert chain_verify().first_contradicted == made[2]


def test_truncated_tail_is_reported_with_the_checkpoint_beyond_the_end(key):
    made = _chain_with_checkpoints_at_2_4_and_6()
    cut_tail(5)
    assert chain_verify().first_contradicted == made[6]
    message = _broken()
    assert f"the {describe(made[6])} lies beyond the end of the chain" in message
    assert "(the last event is #4): events were cut from the end" in message


def test_deleted_range_relinked_is_reported_with_the_first_checkpoint_after_it(key):
    made = _chain_with_checkpoints_at_2_4_and_6()
    cut_range(3, 3)
    assert chain_verify().first_contradicted == made[4]
    assert f"the {describe(made[4])} says its hash is" in _broken()


def test_checkpoint_with_a_bad_signature_is_a_forgery(key):
    made = _chain_with_checkpoints_at_2_4_and_6()
    other = base64.b64encode(key.sign(b"something else")).decode()
    AuditCheckpoint.objects.filter(pk=made[4].pk).update(signature=other)
    verified = chain_verify()
    assert verified.first_forged == made[4]
    assert f"the {describe(made[4])} has a bad signature: it was forged" in _broken()


def test_checkpoint_signed_by_the_forger_with_a_key_of_their_own_is_refused(key):
    _chain_with_checkpoints_at_2_4_and_6()
    last = rewrite_from(1)
    AuditCheckpoint.objects.all().delete()
    theirs = Ed25519PrivateKey.generate()
    checkpoint_sign(key=theirs, seq=last.seq, head_hash=last.hash, now=MONDAY)
    assert f"is signed with key {key_id(theirs.public_key())[:12]}..., which is not" in _broken()


def test_prune_flag_set_by_the_database_breaks_the_signature(key):
    made = _chain_with_checkpoints_at_2_4_and_6()
    AuditCheckpoint.objects.filter(pk=made[6].pk).update(prunes_up_to=True)
    assert "signed prune checkpoint of event #6" in _broken()
    assert "has a bad signature" in _broken()


def test_checkpoint_deleted_from_the_table_still_counts_from_the_checkpoint_file(
    key, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    with django_capture_on_commit_callbacks(execute=True):
        made = _chain_with_checkpoints_at_2_4_and_6()
    rewrite_from(3)
    AuditCheckpoint.objects.all().delete()  # the forger empties the table too
    verified = chain_verify()
    assert verified.first_contradicted.seq == 4
    assert describe(made[4]) in verified.record.problem


def test_verify_command_reads_a_checkpoint_file_named_on_the_command_line(key, tmp_path):
    copy = tmp_path / "off-host-copy.jsonl"
    made = _chain_with_checkpoints_at_2_4_and_6()
    copy.write_text("".join(json.dumps(checkpoint_json(c)) + "\n" for c in made.values()))
    cut_tail(5)
    AuditCheckpoint.objects.all().delete()
    with pytest.raises(CommandError, match="lies beyond the end of the chain"):
        call_command("verify_audit", checkpoint_file=str(copy), stdout=StringIO())


def test_an_unreadable_line_of_the_checkpoint_file_is_skipped(
    key, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    with django_capture_on_commit_callbacks(execute=True):
        _chain_with_checkpoints_at_2_4_and_6()
    with open(settings.AUDIT_CHECKPOINT_FILE, "a") as file:
        file.write('{"seq": 9, "head_ha')  # cut short by a crash mid-write
    assert chain_verify().record.ok


def test_an_edit_that_breaks_a_link_is_reported_as_before(key):
    _chain_with_checkpoints_at_2_4_and_6()
    forge("UPDATE audit_auditevent SET message = %s WHERE seq = %s", "x", 5)
    assert "Audit chain broken after 4 good events: event #5 was modified" in _broken()


# Tasks -------------------------------------------------------------------------------------


def test_verify_task_records_a_verification(key):
    _write(2)
    result = tasks.verify()
    record = ChainVerification.objects.get()
    assert result == {
        "verification": record.pk,
        "ok": True,
        "checked": 2,
        "checkpoints": 0,
        "problem": "",
    }


def test_periodic_schedules_are_made_once_with_the_checkpoint_interval(settings):
    settings.AUDIT_CHECKPOINT_MINUTES = 10
    tasks.ensure_periodic_schedules()
    tasks.ensure_periodic_schedules()
    schedules = {s.name: s for s in Schedule.objects.filter(func__startswith="audit.tasks.")}
    assert set(schedules) == {
        tasks.CHECKPOINT_SCHEDULE,
        tasks.VERIFY_SCHEDULE,
        tasks.PRUNE_SCHEDULE,
    }
    checkpoint = schedules[tasks.CHECKPOINT_SCHEDULE]
    assert (checkpoint.schedule_type, checkpoint.minutes) == (Schedule.MINUTES, 10)
    assert schedules[tasks.VERIFY_SCHEDULE].schedule_type == Schedule.DAILY
    assert schedules[tasks.PRUNE_SCHEDULE].schedule_type == Schedule.DAILY

"""The SIEM stream: sealed events go out, in chain order, at least once, as RFC 5424 syslog
over UDP or TCP (received here by a real listener on loopback) and as JSON lines, shaped like
Microsoft Graph's directoryAudit; a target that is down holds the stream back without losing an
event; signed checkpoints go to the same targets; nothing configured costs nothing.
"""

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assignments.models import AssignmentKind
from assignments.services import assignment_create
from audit import log as audit_log
from audit import siem
from audit.apps import STREAM_WORK
from audit.models import AuditCheckpoint, AuditEvent, AuditStreamCursor
from pim_portal import request_context, timekeeper
from pim_portal.actor import Actor
from tests.audit.syslog_listener import SyslogListener, parse
from tests.concurrency import race
from tests.factories import make_user, role

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, 9, 30, 15, 123456, tzinfo=UTC)
AUTHPRIV, LOCAL0 = 10, 16
WARNING, NOTICE, INFO = 4, 5, 6


# Targets ---------------------------------------------------------------------------------------


def _point_at(settings, listener: SyslogListener) -> None:
    settings.AUDIT_SYSLOG_HOST = listener.host
    settings.AUDIT_SYSLOG_PORT = listener.port
    settings.AUDIT_SYSLOG_PROTOCOL = listener.protocol


@pytest.fixture
def udp_syslog(settings):
    with SyslogListener("udp") as listener:
        _point_at(settings, listener)
        yield listener


@pytest.fixture
def tcp_syslog(settings):
    with SyslogListener("tcp") as listener:
        _point_at(settings, listener)
        yield listener


@pytest.fixture
def tcp_syslog_down(settings):
    """A TCP receiver whose port is taken but refuses connections until `start()`."""
    with SyslogListener("tcp", listening=False) as listener:
        _point_at(settings, listener)
        yield listener


@pytest.fixture
def jsonl(settings, tmp_path):
    path = tmp_path / "audit.jsonl"
    settings.AUDIT_JSONL_PATH = str(path)
    return path


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


# Helpers ---------------------------------------------------------------------------------------


def _sealed(*messages: str, action: str = "pim.test.event") -> list[AuditEvent]:
    for text in messages:
        audit_log.record(action=action, message=text, actor=Actor.system("test"))
    audit_log.seal_all()
    return list(AuditEvent.objects.filter(seq__isnull=False).order_by("seq"))


def _stream(limit: int = 200) -> int:
    return siem.stream_batch(timezone.now(), limit)


def _documents(listener: SyslogListener) -> list[dict]:
    return [json.loads(message.msg) for message in listener.messages()]


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _details(document: dict) -> dict:
    return {d["key"]: d["value"] for d in document["additionalDetails"]}


def _cursor() -> int:
    return AuditStreamCursor.objects.filter(pk=1).values_list("seq", flat=True).first() or 0


def _only_event(listener: SyslogListener) -> dict:
    assert _stream() == 1
    [document] = _documents(listener)
    return document


# RFC 5424 over UDP and TCP ----------------------------------------------------------------------


def test_sealed_events_arrive_over_udp_as_rfc5424_in_chain_order(udp_syslog, clock):
    events = _sealed("one", "two", "three")
    assert _stream() == 3
    received = udp_syslog.messages()
    assert [m.structured_data["pim@32473"]["seq"] for m in received] == ["1", "2", "3"]
    assert [m.structured_data["pim@32473"]["hash"] for m in received] == [e.hash for e in events]
    first = received[0]
    assert (first.version, first.facility, first.severity) == (1, AUTHPRIV, NOTICE)
    assert first.timestamp == T0
    assert (first.app_name, first.msgid) == ("pim-portal", "pim.test.event")
    assert first.bom
    assert [_details(json.loads(m.msg))["message"] for m in received] == ["one", "two", "three"]


def test_sealed_events_arrive_over_tcp_octet_counted_in_chain_order(tcp_syslog):
    events = _sealed(*[f"event {n}" for n in range(25)])
    assert _stream() == 25
    received = tcp_syslog.messages()  # the listener checked every frame's octet count
    assert [int(m.structured_data["pim@32473"]["seq"]) for m in received] == list(range(1, 26))
    assert [m.structured_data["pim@32473"]["hash"] for m in received] == [e.hash for e in events]
    assert tcp_syslog.connections == 1  # one connection for the batch
    assert all(m.bom and m.app_name == "pim-portal" for m in received)


def test_each_sealed_event_is_sent_once(udp_syslog):
    _sealed("one", "two")
    assert _stream() == 2
    assert _stream() == 0
    _sealed("three")
    assert _stream() == 1
    seqs = [m.structured_data["pim@32473"]["seq"] for m in udp_syslog.messages()]
    assert seqs == ["1", "2", "3"]
    assert _cursor() == 3


def test_a_batch_takes_at_most_its_limit_and_the_next_batch_goes_on(tcp_syslog):
    _sealed(*[f"event {n}" for n in range(5)])
    assert [_stream(limit=2), _stream(limit=2), _stream(limit=2), _stream(limit=2)] == [2, 2, 1, 0]
    seqs = [m.structured_data["pim@32473"]["seq"] for m in tcp_syslog.messages()]
    assert seqs == ["1", "2", "3", "4", "5"]


def test_unsealed_events_wait_for_the_sealer(udp_syslog):
    audit_log.record(action="pim.test.event", message="not yet")
    assert siem.next_due() is None
    assert _stream() == 0
    assert udp_syslog.messages() == []


def test_structured_data_values_are_escaped():
    element = siem.structured_data({"seq": "7", "note": 'say "hi" \\ [x]'})
    assert element == '[pim@32473 seq="7" note="say \\"hi\\" \\\\ [x\\]"]'
    raw = b"<85>1 2026-06-01T09:30:15Z host pim-portal 1 pim.x " + element.encode()
    assert parse(raw).structured_data == {"pim@32473": {"seq": "7", "note": 'say "hi" \\ [x]'}}


def test_the_facility_setting_sets_the_priority(udp_syslog, settings):
    settings.AUDIT_SYSLOG_FACILITY = "local0"
    _sealed("one")
    _stream()
    [message] = udp_syslog.messages()
    assert (message.facility, message.severity) == (LOCAL0, NOTICE)


def test_an_unknown_protocol_is_refused_loudly(settings):
    settings.AUDIT_SYSLOG_HOST = "127.0.0.1"
    settings.AUDIT_SYSLOG_PROTOCOL = "http"
    with pytest.raises(ImproperlyConfigured, match='AUDIT_SYSLOG_PROTOCOL must be "udp" or "tcp"'):
        siem.targets()


# Graph's directoryAudit -------------------------------------------------------------------------


def test_an_assignment_made_by_a_user_reads_as_graph_directory_audit(clock, udp_syslog, pra):
    erin = make_user("erin", display_name="Erin Eligible")
    request_id = uuid.uuid4()
    token = request_context.set_current(ip="203.0.113.7", request_id=request_id)
    try:
        [request] = assignment_create(
            actor=pra,
            principals=[erin],
            role=role("Security Reader"),
            scope=None,
            kind=AssignmentKind.ELIGIBLE,
            end=T0 + timedelta(days=90),
            justification="Quarterly audit",
        )
    finally:
        request_context.reset(token)
    audit_log.seal_all()
    event = AuditEvent.objects.get(action="pim.assignment.created")
    document = _only_event(udp_syslog)

    assert document["activityDisplayName"] == "Assignment added"
    assert document["activityDateTime"] == "2026-06-01T09:30:15.123456Z"
    assert (document["category"], document["operationType"]) == ("RoleManagement", "Add")
    assert (document["result"], document["resultReason"]) == ("success", "")
    assert document["loggedByService"] == "PIM Portal"
    assert document["correlationId"] == str(request_id)
    assert uuid.UUID(document["id"])
    assert document["initiatedBy"] == {
        "user": {
            "id": str(pra.pk),
            "displayName": "Pat Admin",
            "userPrincipalName": None,
            "ipAddress": "203.0.113.7",
        },
        "app": None,
    }
    [target] = document["targetResources"]
    assignment = request.result_assignment
    assert (target["id"], target["type"]) == (str(assignment.pk), "RoleAssignment")
    changes = {p["displayName"]: p for p in target["modifiedProperties"]}
    assert changes["role"] == {
        "displayName": "role",
        "oldValue": None,
        "newValue": '"Security Reader"',
    }
    assert changes["justification"]["newValue"] == '"Quarterly audit"'
    assert changes["end"]["newValue"] == '"2026-08-30T09:30:15.123Z"'
    details = _details(document)
    assert details["seq"] == str(event.seq)
    assert details["hash"] == event.hash
    assert details["action"] == "pim.assignment.created"
    assert (details["role"], details["scope"], details["principal"]) == (
        "Security Reader",
        "/",
        "Erin Eligible",
    )
    assert details["requestId"] == str(request.pk)


def test_a_failed_sign_in_has_no_actor_but_its_address(udp_syslog, clock):
    make_user("erin", display_name="Erin Eligible")
    response = Client().post(
        reverse("login"), {"username": "erin", "password": "wrong"}, REMOTE_ADDR="198.51.100.9"
    )
    assert response.status_code == 200
    audit_log.seal_all()
    assert _stream() == 1
    [message] = udp_syslog.messages()
    document = json.loads(message.msg)

    assert (message.msgid, message.severity) == ("pim.security.signin_failed", WARNING)
    assert document["initiatedBy"] == {
        "user": {
            "id": None,
            "displayName": None,
            "userPrincipalName": None,
            "ipAddress": "198.51.100.9",
        },
        "app": None,
    }
    assert (document["result"], document["resultReason"]) == (
        "failure",
        "Failed sign-in as 'erin'.",
    )
    assert (document["category"], document["operationType"]) == ("Authentication", "Other")
    assert document["activityDisplayName"] == "Failed sign-in"
    [target] = document["targetResources"]
    assert (target["type"], target["displayName"]) == ("User", "Erin Eligible")


def test_the_system_acting_for_a_reason_is_an_app(udp_syslog):
    erin = make_user("erin", display_name="Erin Eligible")
    audit_log.record(
        action="pim.assignment.ended",
        actor=Actor.system("scheduler"),
        target=erin,
        principal="Erin Eligible",
        role="Security Reader",
        scope="/",
        before={"end": "2026-06-01T09:00:00Z", "kind": "active"},
        after={"end": "2026-06-01T09:00:00Z", "kind": "ended"},
        message="The assignment ended.",
    )
    audit_log.seal_all()
    document = _only_event(udp_syslog)

    assert document["initiatedBy"] == {
        "user": None,
        "app": {
            "appId": None,
            "displayName": "system (scheduler)",
            "servicePrincipalId": None,
            "servicePrincipalName": "PIM Portal",
        },
    }
    assert (document["operationType"], document["result"]) == ("Delete", "success")
    assert document["correlationId"] == document["id"]  # no HTTP request: the event itself
    [target] = document["targetResources"]
    assert target["modifiedProperties"] == [
        {"displayName": "kind", "oldValue": '"active"', "newValue": '"ended"'}
    ]  # only what changed


def test_a_datagram_too_large_is_cut_to_the_limit_with_a_marker(udp_syslog, settings):
    settings.AUDIT_SYSLOG_UDP_MAX_BYTES = 2048
    after = {f"field_{n}": "x" * 300 for n in range(40)}
    audit_log.record(action="pim.role.changed", after=after, message="m" * 3000, role="Reader")
    [event] = _sealed()
    assert _stream() == 1
    [raw] = udp_syslog.settle()
    assert len(raw) <= 2048
    message = parse(raw)
    document = json.loads(message.msg)
    assert message.structured_data["pim@32473"] == {"seq": str(event.seq), "hash": event.hash}
    assert _details(document)["truncated"].startswith("modifiedProperties")
    assert _details(document)["seq"] == str(event.seq)
    assert document["targetResources"][0]["modifiedProperties"] == []


def test_an_event_with_every_field_at_its_longest_fits_the_smallest_datagram(udp_syslog, settings):
    settings.AUDIT_SYSLOG_UDP_MAX_BYTES = 1  # raised to the smallest allowed
    user = make_user("u" * 150, display_name="D" * 150)
    token = request_context.set_current(
        ip="2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", request_id=uuid.uuid4()
    )
    try:
        audit_log.record(
            action="pim.security.mfa_remove_refused",
            actor=user,
            target=user,
            principal="P" * 200,
            role="R" * 200,
            scope="/" + "s" * 499,
            role_request_id=10**15,
            before={"k" * 50: "v" * 500},
            after={f"x{n}": "y" * 100 for n in range(50)},
            message="m" * 5000,
        )
    finally:
        request_context.reset(token)
    _sealed()
    _stream()
    [raw] = udp_syslog.settle()
    assert len(raw) <= siem.MIN_UDP_MAX_BYTES
    assert _details(json.loads(parse(raw).msg))["truncated"] == (
        "modifiedProperties, message, additionalDetails, names"
    )


def test_an_event_that_fits_a_datagram_is_sent_whole(udp_syslog):
    audit_log.record(action="pim.role.changed", after={"name": "Reader"}, message="small")
    _sealed()
    _stream()
    [document] = _documents(udp_syslog)
    assert "truncated" not in _details(document)
    assert document["targetResources"][0]["modifiedProperties"][0]["newValue"] == '"Reader"'


def test_tcp_sends_a_large_event_whole(tcp_syslog):
    after = {f"field_{n}": "x" * 300 for n in range(40)}
    audit_log.record(action="pim.role.changed", after=after)
    _sealed()
    _stream()
    [document] = _documents(tcp_syslog)
    assert len(document["targetResources"][0]["modifiedProperties"]) == 40
    assert "truncated" not in _details(document)


# JSON lines ------------------------------------------------------------------------------------


def test_the_jsonl_file_gets_one_graph_document_a_line_in_chain_order(jsonl):
    events = _sealed("one", "two", "three")
    assert _stream() == 3
    lines = _lines(jsonl)
    assert [_details(line)["seq"] for line in lines] == ["1", "2", "3"]
    assert [_details(line)["hash"] for line in lines] == [e.hash for e in events]
    assert all(line["loggedByService"] == "PIM Portal" for line in lines)


def test_the_jsonl_file_is_appended_to(jsonl):
    _sealed("one")
    _stream()
    _sealed("two")
    _stream()
    assert [_details(line)["message"] for line in _lines(jsonl)] == ["one", "two"]


def test_syslog_and_the_file_both_get_every_event(tcp_syslog, jsonl):
    _sealed("one", "two")
    assert _stream() == 2
    assert [_details(d)["seq"] for d in _documents(tcp_syslog)] == ["1", "2"]
    assert [_details(line)["seq"] for line in _lines(jsonl)] == ["1", "2"]


# Nothing configured ----------------------------------------------------------------------------


def test_nothing_configured_sends_nothing_and_costs_no_query(django_assert_num_queries):
    _sealed("one", "two")
    with django_assert_num_queries(0):
        assert siem.next_due() is None
        assert _stream() == 0
    assert not AuditStreamCursor.objects.exists()


# The time engine -------------------------------------------------------------------------------


def test_next_due_is_when_the_first_unsent_event_was_written_in_one_query(
    udp_syslog, clock, django_assert_num_queries
):
    _sealed("one")
    clock.shift(timedelta(minutes=5))
    with django_assert_num_queries(1):
        assert siem.next_due() == T0


def test_next_due_is_none_once_everything_went_out(udp_syslog):
    _sealed("one", "two")
    _stream()
    assert siem.next_due() is None


def test_the_time_engine_seals_and_streams_what_was_written(tcp_syslog):
    assert STREAM_WORK in [work.name for work in timekeeper.registered()]
    audit_log.record(action="pim.test.event", message="one")
    audit_log.record(action="pim.test.event", message="two")
    done = timekeeper.catch_up()
    assert done[STREAM_WORK] == 2
    assert [_details(d)["message"] for d in _documents(tcp_syslog)] == ["one", "two"]


# A target that is down -------------------------------------------------------------------------


def test_a_target_that_is_down_keeps_the_cursor_and_logs_an_error(tcp_syslog_down, caplog):
    _sealed("one", "two")
    with caplog.at_level(logging.ERROR, logger="audit.siem"):
        assert _stream() == 0
    assert _cursor() == 0
    [record] = caplog.records
    assert record.getMessage().startswith(
        f"The audit stream could not send events #1 to #2 to syslog tcp://127.0.0.1:"
        f"{tcp_syslog_down.port}"
    )
    assert siem.next_due() is not None  # still due: the next run tries again


def test_events_held_back_by_a_down_target_arrive_once_in_order_when_it_is_up(tcp_syslog_down):
    _sealed("one", "two")
    assert _stream() == 0
    assert _stream() == 0
    _sealed("three")
    tcp_syslog_down.start()
    assert _stream() == 3
    assert _stream() == 0
    documents = _documents(tcp_syslog_down)
    assert [_details(d)["message"] for d in documents] == ["one", "two", "three"]


def test_a_failing_file_holds_the_stream_back_too(settings, tmp_path):
    settings.AUDIT_JSONL_PATH = str(tmp_path / "missing-folder" / "audit.jsonl")
    _sealed("one")
    assert _stream() == 0
    assert _cursor() == 0


# Checkpoints -----------------------------------------------------------------------------------


def _checkpoint() -> AuditCheckpoint:
    [*_, last] = _sealed("one", "two")
    return AuditCheckpoint.objects.create(
        seq=last.seq,
        head_hash=last.hash,
        created_at=T0,
        key_id="ab" * 32,
        signature="c2lnbmF0dXJl",
    )


def test_a_checkpoint_goes_to_syslog_with_its_msgid_and_json(udp_syslog):
    checkpoint = _checkpoint()
    assert siem.send_checkpoint(checkpoint) == 1
    [message] = udp_syslog.messages()
    assert (message.msgid, message.severity, message.facility) == (
        "pim.audit.checkpoint",
        INFO,
        AUTHPRIV,
    )
    assert message.structured_data["pim@32473"] == {"seq": "2", "hash": checkpoint.head_hash}
    document = json.loads(message.msg)
    assert document == {
        "type": "checkpoint",
        "id": checkpoint.pk,
        "seq": 2,
        "head_hash": checkpoint.head_hash,
        "created_at": "2026-06-01T09:30:15.123456+00:00",
        "key_id": "ab" * 32,
        "signature": "c2lnbmF0dXJl",
        "prunes_up_to": False,
        "statement": checkpoint.statement().decode(),
    }


def test_a_checkpoint_goes_to_the_file_as_a_checkpoint_line(jsonl):
    checkpoint = _checkpoint()
    assert siem.send_checkpoint(checkpoint) == 1
    [line] = _lines(jsonl)
    assert (line["type"], line["seq"], line["signature"]) == ("checkpoint", 2, "c2lnbmF0dXJl")


def test_a_checkpoint_leaves_the_event_stream_alone(tcp_syslog):
    siem.send_checkpoint(_checkpoint())
    assert _cursor() == 0
    assert _stream() == 2
    assert [m.msgid for m in tcp_syslog.messages()] == [
        "pim.audit.checkpoint",
        "pim.test.event",
        "pim.test.event",
    ]


def test_a_checkpoint_to_a_target_that_is_down_raises(tcp_syslog_down, jsonl):
    checkpoint = _checkpoint()
    with pytest.raises(siem.StreamError, match="Checkpoint #2 could not be written to syslog tcp"):
        siem.send_checkpoint(checkpoint)
    assert _lines(jsonl)[0]["type"] == "checkpoint"  # the other target still took it


def test_a_checkpoint_with_nothing_configured_goes_nowhere():
    assert siem.send_checkpoint(_checkpoint()) == 0


# Two workers (PostgreSQL) ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_streaming_at_once_send_each_event_once_in_order(tcp_syslog):
    _sealed(*[f"event {n}" for n in range(40)])

    def worker():
        return sum(_stream(limit=3) for _ in range(30))

    results = race(worker, worker)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 40
    seqs = [int(m.structured_data["pim@32473"]["seq"]) for m in tcp_syslog.messages()]
    assert seqs == list(range(1, 41))
    assert _cursor() == 40

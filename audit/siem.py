"""Streaming the audit log to a SIEM: syslog (RFC 5424 over UDP or TCP) and a JSON-lines file.

What goes out is what is sealed, in chain order, at least once. A cursor
(`AuditStreamCursor`, one row) says up to which `seq` events went out; `stream_batch` sends
the next sealed events after it to every configured target and moves it only when all of them
took the batch, in one short transaction that locks the cursor row, so two workers never send
the same batch. A target that is down fails the batch: the cursor stays, an error is logged,
and the next run sends the same events again (none lost, none out of order; a target that did
take the batch before another failed gets it twice, which is what "at least once" allows and
what the documents' stable `id` is for). The time engine runs it as due work (`next_due`), so
events go out within seconds of sealing; with no target configured it costs nothing.

Settings (read here with getattr):
- AUDIT_SYSLOG_HOST: the syslog receiver; unset, no syslog.
- AUDIT_SYSLOG_PORT: 514.
- AUDIT_SYSLOG_PROTOCOL: "udp" (RFC 5426, one message a datagram) or "tcp" (RFC 6587 octet
  counting).
- AUDIT_SYSLOG_FACILITY: "authpriv" (10): security messages kept out of general logs by the
  receivers' default rules. A name (kern ... local7) or a number 0-23.
- AUDIT_SYSLOG_TIMEOUT: seconds to connect and send, 5.
- AUDIT_SYSLOG_UDP_MAX_BYTES: the largest datagram, 2048: what RFC 5424 §6.1 and RFC 5426 §3.2
  say every receiver SHOULD accept (a larger one may be dropped or cut by the receiver or a
  relay). A larger event is sent with its modifiedProperties and additionalDetails cut, and a
  "truncated" detail saying so; the whole event is in the portal and in TCP and file targets.
  At least 1472 (one unfragmented IPv4 datagram on Ethernet): an event cut to the bone fits.
- AUDIT_JSONL_PATH: a file appended with one JSON document a line; unset, no file.

Checkpoints of the chain go to the same targets through `send_checkpoint`.
"""

import copy
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit import graph
from audit.models import AuditCheckpoint, AuditEvent, AuditStreamCursor

logger = logging.getLogger(__name__)

APP_NAME = "pim-portal"
# 32473 is the enterprise number RFC 5612 reserves for examples and documentation.
SD_ID = "pim@32473"
CHECKPOINT_MSGID = "pim.audit.checkpoint"
BOM = b"\xef\xbb\xbf"  # RFC 5424 §6.4: a MSG in UTF-8 starts with it

FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "security": 13,
    "console": 14,
    "solaris-cron": 15,
    **{f"local{n}": 16 + n for n in range(8)},
}
WARNING, NOTICE, INFO = 4, 5, 6

DEFAULT_PORT = 514
DEFAULT_FACILITY = "authpriv"
DEFAULT_TIMEOUT = 5.0
DEFAULT_UDP_MAX_BYTES = 2048
MIN_UDP_MAX_BYTES = 1472  # what an event cut to the bone fits in
CUT_MARK = "...[truncated]"


class StreamError(Exception):
    """A checkpoint could not be written to every configured target."""


@dataclass(frozen=True)
class Entry:
    """One thing to send, before a target formats it: an event or a checkpoint."""

    msgid: str
    timestamp: datetime
    severity: int
    params: dict[str, str]  # the structured data, [SD_ID name="value" ...]
    document: dict  # the JSON: Graph's directoryAudit, or the checkpoint
    cuttable: bool = False  # may be cut to fit a datagram (events; checkpoints are small)


def event_entry(event: AuditEvent) -> Entry:
    document = graph.directory_audit(event)
    return Entry(
        msgid=event.action,
        timestamp=event.created_at,
        severity=WARNING if document["result"] == "failure" else NOTICE,
        params={"seq": str(event.seq), "hash": event.hash},
        document=document,
        cuttable=True,
    )


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict:
    """A signed checkpoint as JSON: the fields of the checkpoint file (audit.checkpoints), its
    `type` and `id`, and `statement`, the text the signature covers."""
    return {
        "type": "checkpoint",
        "id": checkpoint.pk,
        "seq": checkpoint.seq,
        "head_hash": checkpoint.head_hash,
        "created_at": checkpoint.created_at.astimezone(UTC).isoformat(),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "prunes_up_to": checkpoint.prunes_up_to,
        "statement": checkpoint.statement().decode(),
    }


def checkpoint_entry(checkpoint: AuditCheckpoint) -> Entry:
    return Entry(
        msgid=CHECKPOINT_MSGID,
        timestamp=checkpoint.created_at,
        severity=INFO,
        params={"seq": str(checkpoint.seq), "hash": checkpoint.head_hash},
        document=checkpoint_document(checkpoint),
    )


def _json(document: dict) -> str:
    return json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


# RFC 5424 --------------------------------------------------------------------------------------


def escape_param_value(value: str) -> str:
    """RFC 5424 §6.3.3: '"', '\\' and ']' in a PARAM-VALUE are escaped with a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _printable(text: str, limit: int) -> str:
    """A header field: printable US-ASCII (33-126), at most `limit` long; "-" when empty."""
    kept = "".join(ch for ch in text if 33 <= ord(ch) <= 126)[:limit]
    return kept or "-"


def _param_name(name: str) -> str:
    return "".join(ch for ch in _printable(name, 32) if ch not in '= ]"')


def structured_data(params: dict[str, str]) -> str:
    body = "".join(f' {_param_name(k)}="{escape_param_value(v)}"' for k, v in params.items())
    return f"[{SD_ID}{body}]"


def syslog_message(
    entry: Entry, *, facility: int, hostname: str, document: dict | None = None
) -> bytes:
    """`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG`, in UTF-8."""
    header = " ".join(
        [
            f"<{facility * 8 + entry.severity}>1",
            graph.graph_time(entry.timestamp),
            _printable(hostname, 255),
            APP_NAME,
            _printable(str(os.getpid()), 128),
            _printable(entry.msgid, 32),
            structured_data(entry.params),
        ]
    )
    body = _json(entry.document if document is None else document)
    return header.encode() + b" " + BOM + body.encode()


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 §3.4.1: `MSG-LEN SP SYSLOG-MSG`."""
    return str(len(message)).encode() + b" " + message


# Cutting an event to fit a datagram -------------------------------------------------------------

ESSENTIAL_DETAILS = {"seq", "hash", "prevHash", "action", "requestId"}


def _cut(text: str | None, size: int) -> str | None:
    if text is None or len(text) <= size:
        return text
    return text[:size] + CUT_MARK


def _cut_values(document: dict) -> str:
    for target in document["targetResources"]:
        for change in target["modifiedProperties"]:
            change["oldValue"] = _cut(change["oldValue"], 128)
            change["newValue"] = _cut(change["newValue"], 128)
    return "modifiedProperties values"


def _drop_changes(document: dict) -> str:
    for target in document["targetResources"]:
        target["modifiedProperties"] = []
    return "modifiedProperties"


def _cut_message(document: dict) -> str:
    document["resultReason"] = _cut(document["resultReason"], 128)
    for detail in document["additionalDetails"]:
        if detail["key"] == "message":
            detail["value"] = _cut(detail["value"], 128)
    return "message"


def _keep_essential_details(document: dict) -> str:
    details = document["additionalDetails"]
    document["additionalDetails"] = [d for d in details if d["key"] in ESSENTIAL_DETAILS]
    return "additionalDetails"


def _cut_names(document: dict) -> str:
    document["resultReason"] = _cut(document["resultReason"], 64)
    document["activityDisplayName"] = _cut(document["activityDisplayName"], 64)
    for who in document["initiatedBy"].values():
        if who:
            who["displayName"] = _cut(who["displayName"], 64)
    for target in document["targetResources"]:
        target["displayName"] = _cut(target["displayName"], 64)
        target["id"] = _cut(target["id"], 64)
    return "names"


# Each step keeps what the steps before it did; the first that fits is sent.
CUTS: list[Callable[[dict], str]] = [
    _cut_values,
    _drop_changes,
    _cut_message,
    _keep_essential_details,
    _cut_names,
]


def fitted(entry: Entry, render: Callable[[dict], bytes], max_bytes: int) -> bytes:
    """The message whole if it fits in `max_bytes`, else cut step by step until it does.

    The cut document says what was cut in an additionalDetails entry "truncated"; the event
    whole is in the portal (and in a TCP or file target), found by its `seq`.
    """
    message = render(entry.document)
    if len(message) <= max_bytes or not entry.cuttable:
        return message
    document = copy.deepcopy(entry.document)
    cut: list[str] = []
    for step in CUTS:
        what = step(document)
        if what == "modifiedProperties" and cut and cut[-1] == "modifiedProperties values":
            cut[-1] = what
        else:
            cut.append(what)
        marked = copy.deepcopy(document)
        marked["additionalDetails"].append({"key": "truncated", "value": ", ".join(cut)})
        message = render(marked)
        if len(message) <= max_bytes:
            return message
    logger.warning("Audit event #%s is still %d bytes when cut", entry.params["seq"], len(message))
    return message


# Targets ----------------------------------------------------------------------------------------


def _facility(value) -> int:
    if isinstance(value, int) or str(value).isdigit():
        number = int(value)
        if 0 <= number <= 23:
            return number
    elif str(value).lower() in FACILITIES:
        return FACILITIES[str(value).lower()]
    raise ImproperlyConfigured(
        f"AUDIT_SYSLOG_FACILITY must be a facility name (auth, authpriv, local0...) or 0-23, "
        f"not {value!r}."
    )


@dataclass
class SyslogTarget:
    host: str
    port: int = DEFAULT_PORT
    protocol: str = "udp"
    facility: int = FACILITIES[DEFAULT_FACILITY]
    timeout: float = DEFAULT_TIMEOUT
    udp_max_bytes: int = DEFAULT_UDP_MAX_BYTES
    hostname: str = field(default_factory=socket.gethostname)

    def __str__(self) -> str:
        return f"syslog {self.protocol}://{self.host}:{self.port}"

    def render(self, entry: Entry) -> bytes:
        def render(document: dict) -> bytes:
            return syslog_message(
                entry, facility=self.facility, hostname=self.hostname, document=document
            )

        if self.protocol == "udp":
            return fitted(entry, render, self.udp_max_bytes)
        return render(entry.document)

    def send(self, entries: list[Entry]) -> None:
        messages = [self.render(entry) for entry in entries]
        if self.protocol == "udp":
            self._send_datagrams(messages)
        else:
            self._send_stream(messages)

    def _send_datagrams(self, messages: list[bytes]) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_DGRAM
        )[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(self.timeout)
            # Connected, so that a closed port's ICMP answer fails the batch rather than nothing.
            sock.connect(address)
            for message in messages:
                sock.send(message)

    def _send_stream(self, messages: list[bytes]) -> None:
        address = (self.host, self.port)
        with socket.create_connection(address, timeout=self.timeout) as sock:
            sock.sendall(b"".join(octet_counted(message) for message in messages))
            sock.shutdown(socket.SHUT_WR)
            # The receiver closes once it has read to our end: then it had every frame. A reset
            # instead means it had not, and the batch goes again.
            try:
                while sock.recv(4096):
                    pass
            except TimeoutError:
                pass  # a receiver that keeps the connection open: what TCP delivered stands


@dataclass
class JsonLinesTarget:
    path: str

    def __str__(self) -> str:
        return f"file {self.path}"

    def send(self, entries: list[Entry]) -> None:
        text = "".join(_json(entry.document) + "\n" for entry in entries)
        # Only the portal's user reads it: audit data names people and their addresses.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        with os.fdopen(descriptor, "a", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())  # on disk before the cursor moves past it


def configured() -> bool:
    host = getattr(settings, "AUDIT_SYSLOG_HOST", "")
    return bool(host or getattr(settings, "AUDIT_JSONL_PATH", ""))


def targets() -> list[SyslogTarget | JsonLinesTarget]:
    """Every configured target, from settings (syslog first)."""
    chosen: list[SyslogTarget | JsonLinesTarget] = []
    host = getattr(settings, "AUDIT_SYSLOG_HOST", "")
    if host:
        protocol = str(getattr(settings, "AUDIT_SYSLOG_PROTOCOL", "udp")).lower()
        if protocol not in ("udp", "tcp"):
            raise ImproperlyConfigured(
                f'AUDIT_SYSLOG_PROTOCOL must be "udp" or "tcp", not {protocol!r}.'
            )
        chosen.append(
            SyslogTarget(
                host=host,
                port=int(getattr(settings, "AUDIT_SYSLOG_PORT", DEFAULT_PORT)),
                protocol=protocol,
                facility=_facility(getattr(settings, "AUDIT_SYSLOG_FACILITY", DEFAULT_FACILITY)),
                timeout=float(getattr(settings, "AUDIT_SYSLOG_TIMEOUT", DEFAULT_TIMEOUT)),
                udp_max_bytes=max(
                    MIN_UDP_MAX_BYTES,
                    int(getattr(settings, "AUDIT_SYSLOG_UDP_MAX_BYTES", DEFAULT_UDP_MAX_BYTES)),
                ),
            )
        )
    path = getattr(settings, "AUDIT_JSONL_PATH", "")
    if path:
        chosen.append(JsonLinesTarget(path=str(path)))
    return chosen


# The stream -------------------------------------------------------------------------------------


def next_due() -> datetime | None:
    """When the first sealed event the stream has not sent was written, or None. One query.

    None when no target is configured: the time engine then never wakes for the stream.
    """
    if not configured():
        return None
    sent_up_to = AuditStreamCursor.objects.filter(pk=1).values("seq")[:1]
    written = (
        AuditEvent.objects.filter(
            seq__gt=Coalesce(
                Subquery(sent_up_to), Value(0), output_field=models.PositiveBigIntegerField()
            )
        )
        .order_by("seq")
        .values_list("created_at", flat=True)
        .first()
    )
    if written is None:
        return None
    return min(written, timezone.now())  # a clock ahead on the writing host delays nothing


def _locked_cursor() -> AuditStreamCursor | None:
    """The cursor row, locked for this transaction; None if another worker holds it."""
    locked = AuditStreamCursor.objects.select_for_update(skip_locked=True).filter(pk=1)
    cursor = locked.first()
    if cursor is not None:
        return cursor
    if AuditStreamCursor.objects.filter(pk=1).exists():
        return None  # another worker is sending; it (or the next run) takes these events
    AuditStreamCursor.objects.bulk_create([AuditStreamCursor(pk=1)], ignore_conflicts=True)
    return locked.first()


def stream_batch(now: datetime, limit: int) -> int:
    """Send up to `limit` sealed events after the cursor, in `seq` order, to every target.

    One short transaction holding the cursor row: the cursor moves past the batch only when
    every target took it. How many events went out (0 when a target failed: logged, and the
    next run sends the same events again).
    """
    chosen = targets()
    if not chosen:
        return 0
    with transaction.atomic():
        cursor = _locked_cursor()
        if cursor is None:
            return 0
        batch = list(AuditEvent.objects.filter(seq__gt=cursor.seq).order_by("seq")[: max(0, limit)])
        if not batch:
            return 0
        entries = [event_entry(event) for event in batch]
        for target in chosen:
            try:
                target.send(entries)
            except OSError as error:
                logger.error(
                    "The audit stream could not send events #%d to #%d to %s (%s); "
                    "it will send them again",
                    batch[0].seq,
                    batch[-1].seq,
                    target,
                    error,
                )
                return 0
        AuditStreamCursor.objects.filter(pk=1).update(seq=batch[-1].seq, updated_at=timezone.now())
    return len(batch)


def send_checkpoint(checkpoint: AuditCheckpoint) -> int:
    """Write a signed checkpoint to every configured target, off the database host.

    A syslog message with MSGID "pim.audit.checkpoint" and the checkpoint as JSON; a JSON line
    with "type": "checkpoint". How many targets took it (0 when none is configured). Every
    target is tried; if any failed, StreamError says which, for the caller to log or retry.
    """
    entry = checkpoint_entry(checkpoint)
    chosen = targets()
    failed = []
    for target in chosen:
        try:
            target.send([entry])
        except OSError as error:
            failed.append(f"{target} ({error})")
    if failed:
        raise StreamError(
            f"Checkpoint #{checkpoint.seq} could not be written to {', '.join(failed)}."
        )
    return len(chosen)

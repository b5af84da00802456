"""A real syslog receiver on loopback for the SIEM stream's tests, and a strict RFC 5424 parser.

`SyslogListener("udp")` takes one message a datagram (RFC 5426); `SyslogListener("tcp")` reads
RFC 6587 octet-counted frames, and closes a connection once the sender has ended it (having
recorded every frame first, so a sender that waits for the close knows they all arrived). Both
bind 127.0.0.1 on an ephemeral port. `listening=False` binds the port without listening yet:
a TCP connection is refused until `start()`. Every wait is bounded.
"""

import re
import socket
import threading
from dataclasses import dataclass
from datetime import datetime

WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05  # how often the server threads look whether they should stop
SENTINEL = b"<0>1 - - - - settle -"


class SyslogListener:
    def __init__(self, protocol: str, *, listening: bool = True):
        assert protocol in ("udp", "tcp")
        self.protocol = protocol
        self.host = "127.0.0.1"
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        self._socket = socket.socket(socket.AF_INET, kind)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.host, 0))
        self._socket.settimeout(POLL_SECONDS)
        self.port = self._socket.getsockname()[1]
        self.received: list[bytes] = []
        self.connections = 0
        self.errors: list[str] = []  # what a server thread found wrong (asserted on reading)
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.listening = False
        if listening:
            self.start()

    # Life -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self.protocol == "tcp":
            self._socket.listen(16)
        self.listening = True
        self._spawn(self._serve_udp if self.protocol == "udp" else self._serve_tcp)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=WAIT_SECONDS)
        self._socket.close()
        assert not any(t.is_alive() for t in self._threads), "a listener thread hung"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    # Receiving ------------------------------------------------------------------------------

    def _record(self, message: bytes) -> None:
        with self._changed:
            self.received.append(message)
            self._changed.notify_all()

    def _serve_udp(self) -> None:
        while not self._stopping.is_set():
            try:
                datagram, _ = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            self._record(datagram)

    def _serve_tcp(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            with self._changed:
                self.connections += 1
            self._spawn(self._read_frames, connection)

    def _read_frames(self, connection: socket.socket) -> None:
        try:
            self._frames(connection)
        except AssertionError as error:
            with self._changed:
                self.errors.append(str(error))
                self._changed.notify_all()

    def _frames(self, connection: socket.socket) -> None:
        """`MSG-LEN SP SYSLOG-MSG`, again and again, until the sender ends the connection."""
        connection.settimeout(POLL_SECONDS)
        buffer = b""
        with connection:
            while not self._stopping.is_set():
                try:
                    chunk = connection.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                buffer += chunk
                while b" " in buffer:
                    length, rest = buffer.split(b" ", 1)
                    assert length.isdigit() and not length.startswith(b"0"), f"bad frame {buffer!r}"
                    if len(rest) < int(length):
                        break
                    self._record(rest[: int(length)])
                    buffer = rest[int(length) :]
            assert buffer == b"", f"a frame was cut off: {buffer!r}"

    # Waiting --------------------------------------------------------------------------------

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[bytes]:
        """The first `count` messages, once they are here (at most `timeout` seconds)."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self.received) >= count, timeout)
            assert not self.errors, self.errors
            assert arrived, f"expected {count} messages, {len(self.received)} arrived"
            return list(self.received)

    def settle(self) -> list[bytes]:
        """Every message sent before this call, and nothing else.

        UDP: a datagram of our own sent now is queued behind everything already sent to the
        port on loopback; once it is read, all that came before it was. TCP senders wait for the
        close, so what they sent is already recorded.
        """
        if self.protocol == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.sendto(SENTINEL, (self.host, self.port))
            with self._changed:
                here = self._changed.wait_for(lambda: SENTINEL in self.received, WAIT_SECONDS)
                assert here, "the listener did not read its own datagram"
                self.received.remove(SENTINEL)
        with self._changed:
            assert not self.errors, self.errors
            return list(self.received)

    def messages(self) -> list["SyslogMessage"]:
        return [parse(raw) for raw in self.settle()]


# RFC 5424 --------------------------------------------------------------------------------------

HEADER = re.compile(
    rb"<(?P<pri>\d{1,3})>(?P<version>[1-9]\d{0,2}) (?P<timestamp>\S+) (?P<hostname>\S+) "
    rb"(?P<app_name>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")
LIMITS = {"hostname": 255, "app_name": 48, "procid": 128, "msgid": 32}
BOM = b"\xef\xbb\xbf"


@dataclass
class SyslogMessage:
    facility: int
    severity: int
    version: int
    timestamp: datetime
    hostname: str
    app_name: str
    procid: str
    msgid: str
    structured_data: dict[str, dict[str, str]]
    msg: str
    bom: bool


def _printusascii(value: bytes, name: str) -> str:
    assert all(33 <= b <= 126 for b in value), f"{name} is not printable US-ASCII: {value!r}"
    assert len(value) <= LIMITS[name], f"{name} is longer than {LIMITS[name]}: {value!r}"
    return value.decode("ascii")


def _structured_data(raw: bytes) -> tuple[dict[str, dict[str, str]], bytes]:
    """STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT, PARAM-VALUEs with \\" \\\\ \\] escapes."""
    if raw.startswith(b"-"):
        return {}, raw[1:]
    elements: dict[str, dict[str, str]] = {}
    at = 0
    while at < len(raw) and raw[at : at + 1] == b"[":
        end_of_id = re.compile(rb"[ \]]").search(raw, at)
        assert end_of_id, "an SD-ELEMENT without an end"
        sd_id = raw[at + 1 : end_of_id.start()].decode("ascii")
        params: dict[str, str] = {}
        at = end_of_id.start()
        while raw[at : at + 1] == b" ":
            equals = raw.index(b'="', at)
            name = raw[at + 1 : equals].decode("ascii")
            at = equals + 2
            value = bytearray()
            while raw[at : at + 1] != b'"':
                if raw[at : at + 1] == b"\\" and raw[at + 1 : at + 2] in (b'"', b"\\", b"]"):
                    value += raw[at + 1 : at + 2]
                    at += 2
                    continue
                assert raw[at : at + 1] not in (b"]", b""), "an unescaped ] in a PARAM-VALUE"
                value += raw[at : at + 1]
                at += 1
            params[name] = value.decode("utf-8")
            at += 1
        assert raw[at : at + 1] == b"]", f"an SD-ELEMENT not closed at {at}: {raw[: at + 10]!r}"
        elements[sd_id] = params
        at += 1
    return elements, raw[at:]


def parse(raw: bytes) -> SyslogMessage:
    """One RFC 5424 SYSLOG-MSG; an AssertionError says what in it is not RFC 5424."""
    header = HEADER.match(raw)
    assert header, f"not an RFC 5424 header: {raw[:80]!r}"
    pri = int(header["pri"])
    assert 0 <= pri <= 191, f"PRI {pri} is out of range"
    timestamp = header["timestamp"].decode("ascii")
    assert TIMESTAMP.fullmatch(timestamp), f"not an RFC 5424 TIMESTAMP: {timestamp}"
    structured, rest = _structured_data(raw[header.end() :])
    msg = b""
    if rest:
        assert rest.startswith(b" "), f"no space before MSG: {rest[:20]!r}"
        msg = rest[1:]
    bom = msg.startswith(BOM)
    return SyslogMessage(
        facility=pri // 8,
        severity=pri % 8,
        version=int(header["version"]),
        timestamp=datetime.fromisoformat(timestamp),
        hostname=_printusascii(header["hostname"], "hostname"),
        app_name=_printusascii(header["app_name"], "app_name"),
        procid=_printusascii(header["procid"], "procid"),
        msgid=_printusascii(header["msgid"], "msgid"),
        structured_data=structured,
        msg=(msg[3:] if bom else msg).decode("utf-8"),
        bom=bom,
    )

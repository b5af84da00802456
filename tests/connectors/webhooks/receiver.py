"""A real HTTP receiver on 127.0.0.1 (http.server in a thread) for the webhook tests.

It records every request it gets (headers, body, when) and answers what it is told: a status
(200 by default, or a queue of statuses, one per request, after `delay` seconds), a redirect,
or nothing at all ("hang": it reads the request and never answers, until the test ends or a
bound passes).
"""

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = "hang"
HANG_BOUND = 30  # seconds a hanging answer waits at most: the thread ends by itself


@dataclass
class Received:
    headers: dict
    body: bytes
    at: float  # time.time() when it arrived (real time, for the latency test)
    path: str = "/"


@dataclass
class Receiver:
    answers: deque = field(default_factory=deque)
    default: int | str = 200
    received: list = field(default_factory=list)
    delay: float = 0.0  # seconds before each answer (a slow receiver)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            at=time.time(),
                            path=self.path,
                        )
                    )
                    answer = receiver.answers.popleft() if receiver.answers else receiver.default
                    receiver._arrived.notify_all()
                if receiver.delay:
                    receiver._release.wait(receiver.delay)
                if answer == HANG:
                    receiver._release.wait(HANG_BOUND)
                    self.close_connection = True
                    return
                if isinstance(answer, tuple):  # (status, location): a redirect
                    status, location = answer
                    self.send_response(status)
                    self.send_header("location", location)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                text = b"thanks" if 200 <= answer < 300 else b"receiver error: try later"
                self.send_response(answer)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # many senders at once: no connection refused by backlog

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/pim"

    def answer(self, *answers) -> None:
        """The next requests get these answers, in order (then the default)."""
        with self._lock:
            self.answers.extend(answers)

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, seconds: float) -> bool:
        """Wait (a bounded wait, for a real worker process) until `count` requests arrived."""
        deadline = time.monotonic() + seconds
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
            return True

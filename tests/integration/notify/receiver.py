"""A real HTTP receiver on 127.0.0.1 for delivery tests: records every request, answers
from a script (status, headers, body per request, then a default), and can hold requests
open (a receiver that hangs) until released."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: deque[Reply] = deque()  # replies for any path, in order
        self.by_path: dict[str, deque[Reply]] = {}  # replies for one path, before ``script``
        self.default = Reply()
        self.hold = threading.Event()  # set → every request waits until released
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                received = Received(self.path, dict(self.headers.items()), body, time.time())
                with receiver._lock:
                    receiver.requests.append(received)
                    own = receiver.by_path.get(self.path)
                    if own:
                        reply = own.popleft()
                    else:
                        reply = receiver.script.popleft() if receiver.script else receiver.default
                if receiver.hold.is_set():
                    receiver.release.wait(60)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()

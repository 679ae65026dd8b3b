"""Fixtures: a simulator embedded in a thread on a free port, and a small blocking client."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websocket

from workers.simulator import SimulatorConfig, SimulatorHandle, SimulatorServer


class Client:
    """websocket-client (what the ingester uses) with JSON helpers and close detection."""

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout)

    def send(self, message: dict[str, Any] | str) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def subscribe(self, subscription: dict[str, Any]) -> None:
        self.send({"method": "subscribe", "subscription": subscription})

    def recv(self, timeout: float = 3.0) -> dict[str, Any]:
        self.ws.settimeout(timeout)
        return json.loads(self.ws.recv())

    def recv_raw(self, timeout: float = 3.0) -> str:
        self.ws.settimeout(timeout)
        frame = self.ws.recv()
        return frame if isinstance(frame, str) else frame.decode()

    def recv_until(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = json.loads(self.recv_raw(max(0.05, deadline - time.monotonic())))
            except json.JSONDecodeError:
                continue
            if match(message):
                return message
        raise AssertionError("expected frame did not arrive")

    def frames_until_dropped(self, timeout: float = 5.0) -> list[str]:
        """Text frames received until the socket ends with no close frame (a 1006 to the client).

        Fails if a close frame arrives or the socket is still open after ``timeout``.
        """
        self.ws.settimeout(timeout)
        frames: list[str] = []
        while True:
            try:
                opcode, frame = self.ws.recv_data_frame(True)
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                return frames
            assert opcode != websocket.ABNF.OPCODE_CLOSE, "server sent a close frame"
            if opcode == websocket.ABNF.OPCODE_TEXT:
                frames.append(frame.data.decode())

    def dropped_without_close_frame(self, timeout: float = 5.0) -> bool:
        self.frames_until_dropped(timeout)
        return True

    def close(self) -> None:
        with contextlib.suppress(websocket.WebSocketException, OSError):
            self.ws.close(timeout=0.5)


def http_post(url: str, body: Any) -> tuple[int, Any]:
    """(status, decoded JSON body or the text of an error) for a POST to the simulator."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(
        url, content=content, headers={"Content-Type": "application/json"}, timeout=5
    )
    if response.status_code == 200:
        return 200, response.json()
    return response.status_code, response.text


def http_get(url: str) -> Any:
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def start_sim() -> Iterator[Callable[..., SimulatorHandle]]:
    """Start simulators with config overrides (port 0, fast blocks); all stopped afterwards."""
    handles: list[SimulatorHandle] = []

    def start(**overrides: Any) -> SimulatorHandle:
        options: dict[str, Any] = {"port": 0, "rate": 200.0, "block_ms": 20.0, "seed": 1}
        options.update(overrides)
        handle = SimulatorServer(SimulatorConfig(**options)).start_in_thread()
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def clients() -> Iterator[Callable[[str], Client]]:
    opened: list[Client] = []

    def connect(url: str) -> Client:
        client = Client(url)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()

"""Conditions a child waits for before its first start (see ``ChildSpec.starts_after``).

Flower inspects the workers as soon as it starts; before any worker answers, each of its
inspect calls times out and it logs a warning per method. So under ``hyperwatch up`` Flower
starts only once the worker answers a control ping — the same broadcast Flower's inspect
uses, so a reply means Flower's first inspection will be answered too.
"""

from __future__ import annotations

from typing import Any

PING_TIMEOUT_S = 1.0


class WorkerAnswersPing:
    """Callable: True once the worker ``node`` answers a ping on ``broker_url``.

    A plain Celery app (no hyperwatch configuration, no settings) is enough to ping: the
    control messages are Celery's own. Its broker connection is closed once the worker
    answered; errors (broker briefly down) count as "not yet".
    """

    def __init__(
        self,
        broker_url: str,
        node: str,
        timeout_s: float = PING_TIMEOUT_S,
        transport_options: dict[str, Any] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.transport_options = transport_options or {}  # the broker kind's (Sentinel)
        self.node = node
        self.timeout_s = timeout_s
        self._app: Any = None

    def __call__(self) -> bool:
        if self._app is None:
            from celery import Celery

            self._app = Celery("hyperwatch-up", broker=self.broker_url, set_as_current=False)
            self._app.conf.broker_transport_options = self.transport_options
        try:
            replies = self._app.control.ping(destination=[self.node], timeout=self.timeout_s)
        except Exception:
            return False
        answered = any(self.node in reply for reply in replies or ())
        if answered:
            self.close()
        return answered

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None

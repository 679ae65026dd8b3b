"""Malformed payloads, kept with the reason."""

from __future__ import annotations

import json
from typing import Any

from models.dead_letter import DeadLetter
from models.repositories.base import Repository

MAX_PAYLOAD_CHARS = 65_536


class DeadLetterRepository(Repository[DeadLetter]):
    model = DeadLetter

    def record(self, task: str, reason: str, payload: Any) -> DeadLetter:
        """Keep a rejected payload. Not deduplicated: each rejection is an event to see."""
        try:
            text = json.dumps(payload, default=str)
        except (TypeError, ValueError):
            text = repr(payload)
        return self.add(
            DeadLetter(task=task[:200], reason=reason[:2000], payload=text[:MAX_PAYLOAD_CHARS])
        )

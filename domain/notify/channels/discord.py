"""Discord incoming webhook: ``{"content": message}`` (at most 2,000 characters). Discord
answers 204; a 429 carries ``Retry-After`` and ``retry_after`` (float seconds) in its JSON."""

from __future__ import annotations

import json

import httpx

from domain.notify.channels.base import Attempt, DeliveryContext, Outgoing, post_json

MAX_CONTENT = 2000


def _json_retry_after(response: httpx.Response) -> float | None:
    try:
        value = response.json().get("retry_after")
    except (ValueError, AttributeError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


class DiscordChannel:
    kind = "discord"

    def send(self, out: Outgoing, ctx: DeliveryContext) -> Attempt:
        body = json.dumps({"content": out.text[:MAX_CONTENT]}).encode()
        attempt, _ = post_json(ctx, out.target, body, retry_after_of=_json_retry_after)
        return attempt

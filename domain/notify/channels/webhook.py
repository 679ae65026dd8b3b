"""Generic webhook: the canonical JSON document, signed.

Headers (``domain.notify.signing``): ``X-Hyperwatch-Timestamp`` (unix seconds of this
attempt), ``X-Hyperwatch-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``,
and ``Idempotency-Key`` — derived from the notification id, identical on every retry, so a
receiver drops the duplicates that at-least-once delivery can produce. The body is the same
bytes on every attempt; only the timestamp and signature change. During a secret
rotation's overlap the previous secret signs too: ``v1=<new>,v1=<old>``.
"""

from __future__ import annotations

from domain.notify.channels.base import Attempt, DeliveryContext, Outgoing, post_json
from domain.notify.signing import build_headers


class WebhookChannel:
    kind = "webhook"

    def send(self, out: Outgoing, ctx: DeliveryContext) -> Attempt:
        if not out.secret:
            return Attempt(ValueError("webhook channel has no signing secret"))
        body = out.body()
        also = (out.previous_secret,) if out.previous_secret else ()
        headers = build_headers(
            out.secret, body, out.idempotency_key, int(ctx.clock.time()), also=also
        )
        attempt, _ = post_json(ctx, out.target, body, headers)
        return attempt

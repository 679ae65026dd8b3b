"""Slack incoming webhook: ``{"text": message}``. Slack answers 200 ``ok``; 429 carries
``Retry-After``; 4xx such as 404 ``no_service`` / 403 ``invalid_token`` are permanent."""

from __future__ import annotations

import json

from domain.notify.channels.base import Attempt, DeliveryContext, Outgoing, post_json


class SlackChannel:
    kind = "slack"

    def send(self, out: Outgoing, ctx: DeliveryContext) -> Attempt:
        body = json.dumps({"text": out.text}).encode()
        attempt, _ = post_json(ctx, out.target, body, {"Idempotency-Key": out.idempotency_key})
        return attempt

"""Telegram Bot API: ``POST {TELEGRAM_API_BASE}/bot<token>/sendMessage`` with
``{"chat_id": <target>, "text": message}``. The token is the channel's secret.

The base URL is operator configuration (tests point it at a local receiver), not
subscriber input, so it does not go through the SSRF guard — which is why the token, the
one subscriber-given part of the URL, must have a bot token's shape and is escaped
(``domain.notify.credentials.telegram_path``): no token can reach another path of the
API host. On 429 Telegram sends
``{"ok": false, "parameters": {"retry_after": N}}``, which is honoured. The token is part
of the URL, so the attempt this channel returns masks it (``Attempt.hide``) in every
description that reaches a log or ``last_error``.
"""

from __future__ import annotations

import json

import httpx

from domain.notify.channels.base import Attempt, DeliveryContext, Outgoing, post_json
from domain.notify.credentials import telegram_path
from domain.notify.retry_policy import telegram_retry_after

MAX_TEXT = 4096


def _retry_after(response: httpx.Response) -> float | None:
    return telegram_retry_after(response.content)


class TelegramChannel:
    kind = "telegram"

    def send(self, out: Outgoing, ctx: DeliveryContext) -> Attempt:
        token = out.secret or ""
        if not token:
            return Attempt(ValueError("telegram channel has no bot token"))
        try:
            path = telegram_path(token)
        except ValueError as exc:
            return Attempt(exc)  # permanent: a malformed token could steer the request path
        url = f"{ctx.settings.telegram_api_base.rstrip('/')}{path}"
        body = json.dumps(
            {"chat_id": out.target, "text": out.text[:MAX_TEXT], "disable_web_page_preview": True}
        ).encode()
        attempt, _ = post_json(ctx, url, body, guarded=False, retry_after_of=_retry_after)
        return Attempt(attempt.result, attempt.retry_after, attempt.detail, hide=token)

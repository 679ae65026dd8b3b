"""Per-channel rate budgets: the published limits of the chat services, as token buckets.

A message that the budget cannot pay for now is never dropped and never sent into a 429:
it waits for the channel's next digest (``domain.notify.grouping``), which goes out when
a token is there. The figures are the services' own, per destination (one incoming
webhook, one chat):

- Slack incoming webhooks: "1 message per second", short bursts allowed
  (api.slack.com/apis/rate-limits, "Incoming webhooks") — 1 per second, bursts of 1.
- Discord webhooks: 5 requests per 2 seconds per webhook, and 30 messages a minute per
  channel (discord.com/developers/docs/topics/rate-limits) — the minute limit is the binding
  one: 0.5 per second, bursts of 5.
- Telegram bots: 1 message a second in one chat, 20 a minute in a group
  (core.telegram.org/bots/faq, "My bot is hitting limits") — 20 a minute, bursts of 3.

Webhooks and Redis pub/sub go to the subscriber's own systems: no budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Budget:
    """A token bucket: ``burst`` messages at once, refilled at ``per_second``."""

    burst: int
    per_second: float

    def wait_ms(self, tokens: float) -> int:
        """How long until a whole token is there, holding ``tokens`` now."""
        missing = max(0.0, 1.0 - tokens)
        return int(missing / self.per_second * 1000) + (1 if missing else 0)


BUDGETS: Final[dict[str, Budget]] = {
    "slack": Budget(burst=1, per_second=1.0),
    "discord": Budget(burst=5, per_second=0.5),
    "telegram": Budget(burst=3, per_second=20 / 60),
}


def budget_of(channel_kind: str) -> Budget | None:
    return BUDGETS.get(channel_kind)

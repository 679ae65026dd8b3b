"""Request and response bodies. Numbers that are money or thresholds travel as decimal
strings (``"117000.5"``), never as JSON floats; times the exchange gives in ms stay epoch
ms; the API's own timestamps are ISO 8601 UTC.

Request bodies refuse unknown fields (a misspelt option must not be silently ignored) and
text the database cannot store (NUL, unpaired surrogates): 422 naming the field. Values
the alert rules judge (kind, threshold, window …) are passed to ``domain.alerts`` as given,
so their refusals read exactly as the CLI's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.notify.credentials import shown_target
from events import MAX_TIME_MS
from models.alert import Alert
from models.api_key import MAX_NAME_CHARS, ApiKey
from models.notification import Notification
from models.notification_channel import NotificationChannel
from models.tracked_wallet import TrackedWallet
from models.user import TIERS, User

LABEL_CHARS = 100  # channel names and wallet labels: their columns


def _storable(value: str) -> bool:
    return "\x00" not in value and not any("\ud800" <= c <= "\udfff" for c in value)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text_the_database_holds(cls, value: Any) -> Any:
        if isinstance(value, str) and not _storable(value):
            raise ValueError("text without NUL or unpaired surrogate characters")
        return value


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- alerts ------------------------------------------------------------------------------------


class AlertIn(Body):
    kind: str = Field(description="price_above, price_below, price_move_pct, … (docs/ALERTS.md)")
    coin: str = Field(description="As Hyperliquid spells it: BTC, kPEPE, @107.")
    threshold: str | int | float = Field(
        description="A decimal string (floats are refused: thresholds are compared exactly)."
    )
    channel_id: int = Field(description="One of your channels.")
    price_source: str | None = None
    window_s: int | str | None = None
    direction: str | None = None
    wallet: str | None = None
    stream: str | None = None
    mode: str = "once"
    cooldown_s: int | str | None = None
    rearm_margin: str | int | float | None = None
    snooze_until: int | None = Field(None, description="Epoch ms.")
    expires_at: int | None = Field(None, description="Epoch ms.")

    def fields(self) -> dict[str, Any]:
        """The definition as ``domain.alerts.manage.create_alert`` takes it."""
        return self.model_dump(exclude={"channel_id"})


class AlertOut(BaseModel):
    id: int
    kind: str
    coin: str
    threshold: str
    price_source: str
    window_s: int | None
    direction: str | None
    wallet: str | None
    stream: str | None
    mode: str
    cooldown_s: int
    rearm_margin: str
    active: bool
    armed: bool
    last_fired_at: int | None
    snooze_until: int | None
    expires_at: int | None
    channel_id: int | None
    created_at: str | None

    @classmethod
    def of(cls, a: Alert) -> AlertOut:
        return cls(
            id=a.id, kind=a.kind, coin=a.coin, threshold=str(a.threshold),
            price_source=a.price_source, window_s=a.window_s, direction=a.direction,
            wallet=a.wallet, stream=a.stream, mode=a.mode, cooldown_s=a.cooldown_s,
            rearm_margin=str(a.rearm_margin), active=a.active, armed=a.armed,
            last_fired_at=a.last_fired_at, snooze_until=a.snooze_until,
            expires_at=a.expires_at, channel_id=a.channel_id, created_at=_iso(a.created_at),
        )  # fmt: skip


class SnoozeIn(Body):
    until: int | None = Field(description="Epoch ms; null ends the snooze.")


BACKTEST_MAX_SPAN_MS = 7 * 86_400_000  # a request's worth of replay: about 10 s a busy day


class BacktestIn(Body):
    from_ms: int = Field(ge=0, le=MAX_TIME_MS, description="Start, epoch ms.")
    to_ms: int | None = Field(
        default=None, ge=0, le=MAX_TIME_MS, description="End, epoch ms (default: now)."
    )


class BacktestFired(BaseModel):
    event_time: int = Field(description="Epoch ms of the event it would have fired on.")
    value: str | None
    message: str


class BacktestSent(BaseModel):
    at: int = Field(description="Epoch ms the channel would have received it.")
    digest: bool
    count: int
    event_times: list[int]
    message: str


class BacktestOut(BaseModel):
    """What `hyperwatch alerts backtest ALERT_ID --json` reports, for the caller's alert."""

    alert_id: int
    from_ms: int
    to_ms: int
    events: int = Field(description="Stored events replayed.")
    held: int = Field(description="Judgements skipped by a stale-data or gap hold.")
    rearmed: int
    fired: list[BacktestFired]
    channel_kind: str
    sent: list[BacktestSent] = Field(description="The messages the channel would have got.")


# --- channels ----------------------------------------------------------------------------------


class ChannelIn(Body):
    kind: str = Field(description="webhook, slack, discord, telegram or redis.")
    target: str | None = Field(None, description="URL, or a Telegram chat id; none for redis.")
    secret: str | None = Field(
        None,
        description="Webhook signing secret (generated and returned once when not given) or "
        "Telegram bot token. Never returned.",
    )
    name: str = Field("", max_length=LABEL_CHARS)


class ChannelOut(BaseModel):
    id: int
    kind: str
    target: str = Field(description="Credential parts of URLs masked.")
    secret_set: bool
    name: str
    active: bool
    created_at: str | None

    @classmethod
    def of(cls, c: NotificationChannel) -> ChannelOut:
        return cls(
            id=c.id, kind=c.kind, target=shown_target(c.kind, c.target),
            secret_set=bool(c.secret), name=c.name, active=c.active,
            created_at=_iso(c.created_at),
        )  # fmt: skip


class ChannelCreated(ChannelOut):
    signing_secret: str | None = Field(
        None, description="Only when the API generated the webhook's signing secret: store it now."
    )


class TestSendOut(BaseModel):
    delivered: bool
    detail: str


# --- wallets -----------------------------------------------------------------------------------


class WalletIn(Body):
    address: str = Field(description="0x followed by 40 hex digits.")
    label: str = Field("", max_length=LABEL_CHARS)


class WalletOut(BaseModel):
    id: int
    address: str
    label: str
    created_at: str | None

    @classmethod
    def of(cls, w: TrackedWallet) -> WalletOut:
        return cls(id=w.id, address=w.address, label=w.label, created_at=_iso(w.created_at))


class WalletTracked(WalletOut):
    created: bool = Field(description="False when the wallet was tracked already.")


class Untracked(BaseModel):
    address: str
    deactivated_alerts: list[int]


# --- notifications -----------------------------------------------------------------------------


class NotificationOut(BaseModel):
    id: int
    alert_id: int | None
    channel_id: int | None
    channel_kind: str
    status: str
    attempts: int
    message: str
    last_error: str | None
    created_at: str | None
    sent_at: str | None

    @classmethod
    def of(cls, n: Notification) -> NotificationOut:
        return cls(
            id=n.id, alert_id=n.alert_id, channel_id=n.channel_id, channel_kind=n.channel_kind,
            status=n.status, attempts=n.attempts, message=str(n.payload.get("message", "")),
            last_error=n.last_error, created_at=_iso(n.created_at), sent_at=_iso(n.sent_at),
        )  # fmt: skip


# --- account -----------------------------------------------------------------------------------


class Quotas(BaseModel):
    max_alerts: int
    max_wallets: int
    notifications_per_hour: int
    api_requests_per_minute: int


class Usage(BaseModel):
    active_alerts: int
    wallets: int
    notifications_last_hour: int


class KeyOut(BaseModel):
    id: int
    prefix: str
    name: str
    created_at: str | None
    last_used_at: str | None
    revoked_at: str | None

    @classmethod
    def of(cls, k: ApiKey) -> KeyOut:
        return cls(
            id=k.id, prefix=k.prefix, name=k.name, created_at=_iso(k.created_at),
            last_used_at=_iso(k.last_used_at), revoked_at=_iso(k.revoked_at),
        )  # fmt: skip


class Account(BaseModel):
    id: int
    email: str
    tier: str
    quotas: Quotas
    usage: Usage
    key: KeyOut


# --- admin -------------------------------------------------------------------------------------


class UserIn(Body):
    email: str
    tier: str = Field("free", description=", ".join(TIERS))


class UserPatch(Body):
    tier: str | None = Field(None, description=", ".join(TIERS))
    active: bool | None = None


class UserOut(BaseModel):
    id: int
    email: str
    tier: str
    active: bool
    created_at: str | None

    @classmethod
    def of(cls, u: User) -> UserOut:
        return cls(
            id=u.id, email=u.email, tier=u.tier, active=u.active, created_at=_iso(u.created_at)
        )


class KeyIn(Body):
    name: str = Field("", max_length=MAX_NAME_CHARS)


class KeyIssued(KeyOut):
    key: str = Field(description="The key itself: shown this once, stored only as a digest.")

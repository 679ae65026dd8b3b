"""Creating and changing subscribers' alerts, channels and wallets: the checks every write
path (the CLI today, an API tomorrow) must make, in one place.

Every function works in the caller's transaction and either writes or raises
:class:`Refused` (one human sentence) having written nothing. Alert writes return the ids
the caller must pass to :func:`domain.alerts.book.announce` *after* committing, so workers
pick the change up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy.orm import Session

from domain.alerts.definition import (
    REARM_MARGIN_DECIMALS,
    THRESHOLD_BOUNDS,
    WALLET_KINDS,
    AlertRule,
    InvalidAlert,
    Mode,
    canonical,
    parse_rule,
)
from domain.alerts.tiers import QuotaExceeded, ensure_alert_slot, ensure_wallet_slot
from domain.notify.channels import user_channel
from domain.notify.credentials import CredentialRefused, check_channel, shown_target
from domain.notify.egress import EgressRefused, resolve_target
from models.alert import Alert
from models.notification_channel import (
    CHANNEL_KINDS,
    MAX_SECRET_CHARS,
    MAX_TARGET_CHARS,
    NotificationChannel,
)
from models.repositories import (
    AlertRepository,
    ChannelRepository,
    TrackedWalletRepository,
    UserRepository,
)
from models.tracked_wallet import TrackedWallet
from models.user import User
from runtime import keys
from runtime.clock import SYSTEM_CLOCK, Clock
from settings import ADDRESS_PATTERN, Settings

URL_KINDS = ("webhook", "slack", "discord")
# How far ahead a new alert may be snoozed or set to expire: 5 years (with their leap days).
# Further is a typing slip (2062 for 2026) or milliseconds given where seconds belong; an
# alert meant to run for ever has no expiry. A time in the past would be a no-op snooze or
# an alert expired at birth (epoch 0 is 1970), so it is refused too.
MAX_SCHEDULE_AHEAD_MS: Final = (5 * 365 + 2) * 86_400_000
MAX_ID: Final = 2**63 - 1  # ids are BIGINT


class Refused(ValueError):
    """The write is not allowed; ``str()`` says why in one sentence, ``field`` which input it
    is about when one is (the API's 422 names it)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(Refused):
    """The object does not exist, or is not the caller's (which must look the same)."""


class OverQuota(Refused):
    """The user's tier allows no more of these."""


class UnknownCoin(Refused):
    """hyperwatch has no market data for the coin."""


def _channel_of(session: Session, user: User, channel_id: int) -> NotificationChannel:
    channel = ChannelRepository(session).get(channel_id)
    if channel is None or channel.user_id != user.id:
        raise Refused(f"channel {channel_id} does not exist for {user.email}", "channel_id")
    if not channel.active:
        raise Refused(f"channel {channel_id} is not active", "channel_id")
    return channel


def _iso(ms: int) -> str:
    # ms is within definition.MAX_TIME_MS (year 9999), which a datetime can show.
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_time(name: str, value: int, now_ms: int) -> None:
    """Refuse ``value`` (epoch ms) for ``name`` unless after ``now_ms`` and at most
    :data:`MAX_SCHEDULE_AHEAD_MS` ahead of it."""
    if value <= now_ms:
        raise Refused(
            f"{name} {_iso(value)} is not in the future (now is {_iso(now_ms)}); give a later time",
            name,
        )
    if value > now_ms + MAX_SCHEDULE_AHEAD_MS:
        raise Refused(
            f"{name} {_iso(value)} is more than 5 years ahead (latest "
            f"{_iso(now_ms + MAX_SCHEDULE_AHEAD_MS)})",
            name,
        )


def check_schedule(rule: AlertRule, now_ms: int) -> None:
    """Refuse a new alert's ``snooze_until`` / ``expires_at`` (:func:`check_time`)."""
    for name in ("snooze_until", "expires_at"):
        value = getattr(rule, name)
        if value is not None:
            check_time(name, value, now_ms)


def create_alert(
    session: Session,
    settings: Settings,
    user: User,
    fields: Mapping[str, Any],
    channel_id: int,
    known_coins: Collection[str] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Alert:
    """Validate and store one alert for ``user``, notifying through ``channel_id``.

    Refused: an invalid definition (``definition.parse_rule``: bounds included), a snooze or
    expiry not ahead of now by at most 5 years (:func:`check_schedule`), a coin not in
    ``known_coins`` (when given), a channel that is not the user's or not active, a wallet
    alert (``definition.WALLET_KINDS``) on a wallet the user does not track, an inactive
    user, or the tier's active-alert quota. Numbers are stored in their canonical form
    (``definition.canonical``: equal as Decimal to what was given).
    """
    if not user.active:
        raise Refused(f"{user.email} is not an active user")
    try:
        rule: AlertRule = parse_rule({**fields, "user_id": user.id, "id": 0})
    except InvalidAlert as exc:
        raise Refused(str(exc), exc.field) from None
    check_schedule(rule, clock.time_ms())
    if known_coins is not None and rule.coin not in known_coins:
        raise UnknownCoin(
            f"unknown coin {rule.coin!r}: hyperwatch has no market data for it", "coin"
        )
    if not 0 < channel_id <= MAX_ID:
        raise Refused(f"channel {channel_id} does not exist for {user.email}", "channel_id")
    _channel_of(session, user, channel_id)
    if rule.kind in WALLET_KINDS:
        tracked = TrackedWalletRepository(session).list(
            {"user_id": user.id, "address": rule.wallet}, limit=1
        )
        if not tracked:
            raise Refused(
                f"{user.email} does not track wallet {rule.wallet}; track it first", "wallet"
            )
    try:
        ensure_alert_slot(session, settings, user)
    except QuotaExceeded as exc:
        raise OverQuota(str(exc)) from None
    alert = Alert(
        user_id=user.id,
        coin=rule.coin,
        kind=str(rule.kind),
        threshold=canonical(rule.threshold, THRESHOLD_BOUNDS[rule.kind].decimals),
        price_source=str(rule.price_source),
        window_s=rule.window_s,
        direction=None if rule.direction is None else str(rule.direction),
        wallet=rule.wallet,
        stream=None if rule.stream is None else str(rule.stream),
        mode=str(rule.mode),
        cooldown_s=rule.cooldown_s,
        rearm_margin=canonical(rule.rearm_margin, REARM_MARGIN_DECIMALS),
        armed=True,
        active=True,
        snooze_until=rule.snooze_until,
        expires_at=rule.expires_at,
        channel_id=channel_id,
    )
    return AlertRepository(session).add(alert)


def owned_alert(session: Session, alert_id: int, user_id: int | None = None) -> Alert:
    """The alert ``alert_id`` — of ``user_id`` when given: another user's alert is
    :class:`NotFound`, worded exactly as a missing one."""
    # An id beyond BIGINT names no row (and would overflow SQLite's integer on the way).
    alert = AlertRepository(session).get(alert_id) if 0 < alert_id <= MAX_ID else None
    if alert is None or (user_id is not None and alert.user_id != user_id):
        raise NotFound(f"alert {alert_id} does not exist")
    return alert


def set_alert_active(session: Session, settings: Settings, alert: Alert, active: bool) -> bool:
    """Pause or resume (resuming re-arms, and counts against the quota again). Returns
    whether anything changed. A once alert that already fired cannot be resumed."""
    if alert.active == active:
        return False
    if active:
        if alert.mode == Mode.ONCE and alert.last_fired_at is not None:
            raise Refused(f"alert {alert.id} fired once already; add a new alert instead")
        user = session.get(User, alert.user_id)
        if user is not None:
            try:
                ensure_alert_slot(session, settings, user)
            except QuotaExceeded as exc:
                raise OverQuota(str(exc)) from None
    return AlertRepository(session).set_active(alert.id, active)


def snooze_alert(alert: Alert, until_ms: int | None, clock: Clock = SYSTEM_CLOCK) -> bool:
    """Hold ``alert`` from firing until ``until_ms`` (None ends a snooze); the time is held
    to :func:`check_time`, as a new alert's is. Returns whether anything changed; the caller
    announces the alert after committing."""
    if until_ms is not None:
        check_time("snooze_until", until_ms, clock.time_ms())
    if alert.snooze_until == until_ms:
        return False
    alert.snooze_until = until_ms
    return True


def check_channel_target(settings: Settings, kind: str, target: str | None) -> str:
    """The target to store for a new channel of ``kind``, or :class:`Refused`: URLs must
    pass the SSRF guard now (a private or malformed one would never be delivered)."""
    if kind not in CHANNEL_KINDS:
        raise Refused(
            f"channel kind must be one of {', '.join(CHANNEL_KINDS)}, got {kind!r}", "kind"
        )
    if kind in URL_KINDS:
        if not target:
            raise Refused(f"a {kind} channel needs its URL", "target")
        try:
            resolve_target(target, settings.webhook_allowlist)
        except EgressRefused as exc:
            raise Refused(f"{target!r} cannot be used: {exc.reason}", "target") from None
        except OSError as exc:
            raise Refused(
                f"{target!r} cannot be used: its host does not resolve ({exc})", "target"
            ) from None
        return target
    if kind == "telegram":
        if not target or (not target.lstrip("-").isdigit() and not target.startswith("@")):
            raise Refused(
                "a telegram channel needs the chat id (a number, or @channelname)", "target"
            )
        return target
    if target:
        raise Refused(
            f"a redis channel takes no target: it publishes on {keys.NOTIFY_USER_CHANNEL.template}",
            "target",
        )
    return ""


def _credential_field(message: str) -> str:
    """Which channel input a ``CredentialRefused`` message is about. Pure."""
    if "channel kind" in message:
        return "kind"
    return "secret" if "secret" in message or "bot token" in message else "target"


def create_channel(
    session: Session,
    settings: Settings,
    user: User,
    kind: str,
    target: str | None,
    secret: str | None,
    name: str = "",
) -> NotificationChannel:
    """Store a channel after :func:`check_channel_target`. Webhooks need a signing secret,
    Telegram its bot token (the caller generates the webhook secret when none is given)."""
    if target is not None and len(target) > MAX_TARGET_CHARS:
        raise Refused(f"a channel target is at most {MAX_TARGET_CHARS} characters", "target")
    if secret is not None and len(secret) > MAX_SECRET_CHARS:
        raise Refused(f"a channel secret is at most {MAX_SECRET_CHARS} characters", "secret")
    try:
        # Every caller, not only the CLI: a credential's shape decides where a request goes
        # (a Telegram token is a path segment).
        check_channel(kind, target, secret, settings.webhook_allowlist)
    except CredentialRefused as exc:
        raise Refused(str(exc), _credential_field(str(exc))) from None
    stored = check_channel_target(settings, kind, target)
    if kind in ("webhook", "telegram") and not secret:
        raise Refused(
            f"a {kind} channel needs a secret ({'signing secret' if kind == 'webhook' else 'bot token'})",
            "secret",
        )
    if kind == "redis":
        stored = user_channel(user.id)
    return ChannelRepository(session).create(user.id, kind, stored, secret=secret, name=name)


@contextmanager
def target_masked(kind: str, target: str | None) -> Iterator[None]:
    """A refusal that quotes the target (the URL checks run again inside the transaction,
    and DNS may answer differently the second time) quotes it as listings show it: a Slack
    or Discord URL is a credential and is never echoed back."""
    try:
        yield
    except Refused as exc:
        message = str(exc)
        if target:
            message = message.replace(repr(target), repr(shown_target(kind, target)))
            message = message.replace(target, shown_target(kind, target))
        raise type(exc)(message, exc.field) from None


def owned_channel(session: Session, channel_id: int, user_id: int | None) -> NotificationChannel:
    """The channel ``channel_id`` — of ``user_id`` when given: another user's channel is
    :class:`NotFound`, worded exactly as a missing one."""
    channel = ChannelRepository(session).get(channel_id) if 0 < channel_id <= MAX_ID else None
    if channel is None or (user_id is not None and channel.user_id != user_id):
        raise NotFound(f"channel {channel_id} does not exist")
    return channel


def remove_channel(session: Session, user_id: int | None, channel_id: int) -> None:
    repository = ChannelRepository(session)
    owned_channel(session, channel_id, user_id)
    in_use = AlertRepository(session).using_channel(channel_id)
    if in_use:
        listed = ", ".join(map(str, in_use[:10]))
        raise Refused(
            f"channel {channel_id} is used by active alert(s) {listed}; remove or pause them first"
        )
    repository.delete(channel_id)


# Grouping windows a channel may have (s): group wait collects the start of a burst, so it
# stays short; the intervals may be up to a day.
MAX_GROUP_WAIT_S: Final = 3_600
MAX_GROUP_INTERVAL_S: Final = 86_400


def set_channel_windows(
    session: Session,
    user_id: int | None,
    channel_id: int,
    windows: dict[str, int | None],
) -> NotificationChannel:
    """Set a channel's digest windows (``group_wait_s``, ``group_interval_s``,
    ``repeat_interval_s``; None: back to the NOTIFY_GROUP_* setting). Keys not given are
    left as they are. Refused: an unknown key, a negative or too long window, a channel
    that does not exist (or is not ``user_id``'s)."""
    limits = {
        "group_wait_s": MAX_GROUP_WAIT_S,
        "group_interval_s": MAX_GROUP_INTERVAL_S,
        "repeat_interval_s": MAX_GROUP_INTERVAL_S,
    }
    for name, value in windows.items():
        if name not in limits:
            raise Refused(f"{name} is not a grouping window ({', '.join(limits)})")
        if value is not None and not 0 <= value <= limits[name]:
            raise Refused(f"{name} must be between 0 and {limits[name]} seconds, got {value}")
    channel = ChannelRepository(session).get(channel_id)
    if channel is None or (user_id is not None and channel.user_id != user_id):
        raise Refused(f"channel {channel_id} does not exist")
    for name, value in windows.items():
        setattr(channel, name, value)
    session.flush()
    return channel


def track_wallet(
    session: Session, settings: Settings, user: User, address: str, label: str = ""
) -> tuple[TrackedWallet, bool]:
    """Follow ``address`` for ``user``; (row, created). Tracking twice is a no-op, not a
    quota use."""
    address = address.strip().lower()
    if not ADDRESS_PATTERN.match(address):
        raise Refused(
            f"{address!r} is not a wallet address (0x followed by 40 hex digits)", "address"
        )
    repository = TrackedWalletRepository(session)
    existing = repository.list({"user_id": user.id, "address": address}, limit=1)
    if existing:
        return existing[0], False
    try:
        ensure_wallet_slot(session, settings, user)
    except QuotaExceeded as exc:
        raise OverQuota(str(exc)) from None
    return repository.track(user.id, address, label), True


def untrack_wallet(session: Session, user: User, address: str) -> list[int]:
    """Stop following ``address``; its wallet alerts (liquidation distance, position change,
    liquidated) are deactivated (they could never be judged again). Returns the ids of those
    alerts, to announce."""
    address = address.strip().lower()
    # Not an address (a NUL the database would refuse to compare, too): tracked by no one.
    tracked = ADDRESS_PATTERN.match(address) is not None
    if not tracked or not TrackedWalletRepository(session).untrack(user.id, address):
        raise NotFound(f"{user.email} does not track {address}")
    alerts = AlertRepository(session)
    ids = [
        a.id
        for a in alerts.for_user(user.id, include_inactive=False)
        if a.kind in WALLET_KINDS and a.wallet == address
    ]
    for alert_id in ids:
        alerts.set_active(alert_id, False)
    return ids


def track_wallets(
    session: Session, settings: Settings, user: User, addresses: Sequence[str], label: str = ""
) -> tuple[list[str], list[str]]:
    """Follow every address in ``addresses`` for ``user`` at once: (newly tracked, already
    tracked), each address once, in the given order. All or nothing: an invalid address or
    more new wallets than the tier allows → :class:`Refused`, nothing written."""
    wanted = list(dict.fromkeys(a.strip().lower() for a in addresses))
    for address in wanted:
        if not ADDRESS_PATTERN.match(address):
            raise Refused(
                f"{address!r} is not a wallet address (0x followed by 40 hex digits)", "address"
            )
    repository = TrackedWalletRepository(session)
    have = repository.addresses_of(user.id)
    new = [a for a in wanted if a not in have]
    if new:
        try:
            ensure_wallet_slot(session, settings, user, adding=len(new))
        except QuotaExceeded as exc:
            raise OverQuota(str(exc)) from None
        repository.track_many(user.id, new, label)
    return new, [a for a in wanted if a in have]


# --- subscribers ----------------------------------------------------------------------------

# RFC 5321 §4.5.3.1: a local part of at most 64 octets; a path of 256 octets with its angle
# brackets leaves 254 for the address (RFC 3696 errata 1690). Measured in characters of the
# stored (lower-cased) form, which the column (String(320)) holds with room to spare.
MAX_EMAIL_CHARS: Final = 254
MAX_EMAIL_LOCAL_CHARS: Final = 64
MAX_DOMAIN_LABEL_CHARS: Final = 63


def check_email(text: str) -> str:
    """The address to store for ``text`` (:func:`_email`); a refusal names ``email``."""
    try:
        return _email(text)
    except Refused as exc:
        raise Refused(str(exc), "email") from None


def _email(text: str) -> str:
    """The address to store for ``text`` — spaces around it trimmed, lower-cased — or
    :class:`Refused` naming what is wrong. No control or other unprintable character
    anywhere (a CR/LF would let an address inject a header into a mail, an escape sequence
    rewrite an operator's terminal), one ``@``, RFC 5321 lengths, a dotted domain."""
    bad = next((c for c in text if not c.isprintable()), None)
    if bad is not None:
        raise Refused(f"email must not contain control characters (found {bad!r})")
    email = text.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "@" in local or " " in email:
        raise Refused(f"email {text[:80]!r} is not an email address")
    if len(local) > MAX_EMAIL_LOCAL_CHARS:
        raise Refused(
            f"email local part (before the @) is at most {MAX_EMAIL_LOCAL_CHARS} characters, "
            f"got {len(local)}"
        )
    if len(email) > MAX_EMAIL_CHARS:
        raise Refused(f"email is at most {MAX_EMAIL_CHARS} characters, got {len(email)}")
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        raise Refused(f"email {text[:80]!r} is not an email address (its domain needs a dot)")
    if max(len(label) for label in labels) > MAX_DOMAIN_LABEL_CHARS:
        raise Refused(f"email domain labels are at most {MAX_DOMAIN_LABEL_CHARS} characters each")
    return email


def create_user(session: Session, email: str, tier: str) -> User:
    """Store a new subscriber after :func:`check_email`; an email already taken is
    :class:`Refused` (the unique index settles a concurrent add: IntegrityError)."""
    address = check_email(email)
    users = UserRepository(session)
    if users.by_email(address) is not None:
        raise Refused(f"user {address} already exists")
    return users.create(address, tier)

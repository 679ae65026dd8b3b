"""Input limits of an alert definition (``domain.alerts.definition``), of a new alert's times
and a subscriber's email (``domain.alerts.manage``), and of the CLI's durations and times:
the bounds themselves, the exact re-arm level at them, and properties over generated
extremes — every input is accepted within its bounds or refused with InvalidAlert / Refused /
UsageError naming the field, never anything else."""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alerts.definition import (
    MAX_COOLDOWN_S,
    MAX_NUMBER_CHARS,
    MAX_TIME_MS,
    REARM_MARGIN_DECIMALS,
    THRESHOLD_BOUNDS,
    AlertKind,
    AlertRule,
    InvalidAlert,
    Mode,
    canonical,
    has_places,
    parse_rule,
)
from domain.alerts.index import BOOK_DECIMALS, book_key
from domain.alerts.judgement import rearm_level
from domain.alerts.manage import (
    MAX_EMAIL_CHARS,
    MAX_EMAIL_LOCAL_CHARS,
    MAX_SCHEDULE_AHEAD_MS,
    Refused,
    check_email,
    check_schedule,
)
from runtime.clock import ManualClock
from tests.unit.alerts.builders import WALLET
from workers.commands.alerts import parse_duration, parse_when
from workers.context import UsageError

D = Decimal
NOW = 1_787_052_600_000
# Options a kind needs so that only the threshold decides.
NEEDS: dict[AlertKind, dict[str, Any]] = {
    AlertKind.PRICE_MOVE_PCT: {"window_s": 60},
    AlertKind.OI_CHANGE_PCT: {"window_s": 60},
    AlertKind.LIQUIDATION_DISTANCE_BELOW: {"wallet": WALLET},
    AlertKind.WALLET_POSITION_CHANGE: {"wallet": WALLET},
    AlertKind.WALLET_LIQUIDATED: {"wallet": WALLET},
    AlertKind.STALE_DATA: {"stream": "mids"},
}


def parsed(kind: AlertKind, threshold: Any, **fields: Any) -> AlertRule:
    return parse_rule(
        {"kind": kind, "coin": "BTC", "threshold": threshold, **NEEDS.get(kind, {}), **fields}
    )


# --- the bounds, at their edges -------------------------------------------------------------


@pytest.mark.parametrize("kind", list(AlertKind))
def test_given_each_kind_when_at_its_bounds_then_accepted_and_one_step_beyond_refused(
    kind: AlertKind,
) -> None:
    bounds = THRESHOLD_BOUNDS[kind]
    step = D(1).scaleb(-bounds.decimals)

    # The highest and the finest values are accepted
    assert parsed(kind, str(bounds.high)).threshold == bounds.high
    assert parsed(kind, str(-bounds.high if bounds.inclusive else bounds.high - step))
    # One step above the top, one decimal too many, or (positive kinds) zero are refused
    with pytest.raises(InvalidAlert, match=r"above the|beyond the"):
        parsed(kind, str(bounds.high + step))
    with pytest.raises(InvalidAlert, match=f"at most {bounds.decimals} decimals"):
        parsed(kind, str(bounds.high - step / 10))
    if not bounds.inclusive:
        with pytest.raises(InvalidAlert, match="above zero"):
            parsed(kind, "0")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("NaN", "finite"),
        ("-Infinity", "finite"),
        ("sNaN", "finite"),
        ("\u0661\u0662\u0663", "ASCII digits"),  # Arabic-Indic 123: Decimal() would take it
        ("\uff11\uff12\uff13", "ASCII digits"),  # fullwidth 123
        ("1_000", "ASCII digits"),
        ("1" * (MAX_NUMBER_CHARS + 1), f"at most {MAX_NUMBER_CHARS} characters"),
        ("1e99999999999999999999", "decimal number"),  # beyond what Decimal holds
        ("1E+999999999", "above the limit"),
        ("1E-999999999", "at most 8 decimals"),
        ("12\n3", "ASCII digits"),
    ],
)
def test_given_a_threshold_text_beyond_plain_decimals_when_parsed_then_refused(
    text: str, words: str
) -> None:
    with pytest.raises(InvalidAlert, match=words):
        parsed(AlertKind.PRICE_ABOVE, text)


def test_given_numbers_in_any_form_when_within_bounds_then_accepted_equal_to_what_was_given() -> (
    None
):
    for text in ("1E+3", " 117000.5 ", "1.00000000000", "+5", ".5", "5.", "0.00000001"):
        assert parsed(AlertKind.PRICE_ABOVE, text).threshold == D(text.strip())
    assert parsed(AlertKind.FUNDING_BELOW, "-4E-2").threshold == D("-0.04")
    assert parsed(AlertKind.PRICE_ABOVE, 5).threshold == 5  # an int, as JSON may give it


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"cooldown_s": MAX_COOLDOWN_S + 1}, "cooldown_s must be whole seconds from 0 to"),
        ({"cooldown_s": "\u0661\u0662"}, "cooldown_s must be a whole number"),
        ({"cooldown_s": "9" * 5000}, "cooldown_s must be a whole number"),
        ({"rearm_margin": "0.1234567"}, f"at most {REARM_MARGIN_DECIMALS} decimals"),
        ({"rearm_margin": "1E-999999"}, f"at most {REARM_MARGIN_DECIMALS} decimals"),
        ({"rearm_margin": "NaN"}, "rearm_margin must be a decimal number (a finite"),
        ({"expires_at": MAX_TIME_MS + 1}, "expires_at must be a time in whole milliseconds"),
        ({"snooze_until": -1}, "snooze_until must be a time in whole milliseconds"),
        ({"last_fired_at": 10**30}, "last_fired_at must be a time"),
        ({"coin": "BTC\n"}, "is not a coin name"),
        ({"coin": "x" * 5000}, "(5002 characters)"),
    ],
)
def test_given_a_margin_duration_or_time_out_of_range_when_parsed_then_it_is_named(
    fields: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidAlert) as refused:
        parsed(AlertKind.PRICE_ABOVE, "100", mode="recurring", **fields)
    assert words in str(refused.value)
    assert len(str(refused.value)) < 300  # a value of thousands of characters is cut short


def test_given_bounded_values_when_made_canonical_then_equal_and_short() -> None:
    assert str(canonical(D("1E+9"), 8)) == "1000000000"
    assert str(canonical(D("1." + "0" * 40), 8)) == "1.00000000"
    assert str(canonical(D("0E-30"), 6)) == "0.000000"
    assert (
        canonical(D("117000.5"), 8) is not None and str(canonical(D("117000.5"), 8)) == "117000.5"
    )
    assert has_places(D("1.50"), 1) and not has_places(D("1.55"), 1)


# --- the re-arm level at the bounds -----------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(set(AlertKind) - {AlertKind.WHALE_TRADE,
                                        AlertKind.WALLET_POSITION_CHANGE,
                                        AlertKind.WALLET_LIQUIDATED}))  # fmt: skip
@pytest.mark.parametrize("margin", ["0", "0.000001", "0.999999", "0.123457"])
def test_given_the_extreme_thresholds_when_the_rearm_level_is_computed_then_it_is_exact(
    kind: AlertKind, margin: str
) -> None:
    bounds = THRESHOLD_BOUNDS[kind]
    finest = D(1).scaleb(-bounds.decimals)
    # The largest, the finest, and one with every digit used (e.g. 999999999.99999999)
    for threshold in (bounds.high, finest, bounds.high - finest):
        rule = parsed(kind, str(threshold), mode="recurring", rearm_margin=margin)
        # Even in a caller's context of 5 digits that traps rounding, nothing is rounded or
        # overflows: the level is computed in its own exact context
        with decimal.localcontext(decimal.Context(prec=5, traps=[decimal.Inexact])):
            level = rearm_level(rule)
        band = abs(threshold) * D(margin)
        assert level in (threshold - band, threshold + band)
        assert has_places(level, bounds.decimals + REARM_MARGIN_DECIMALS)
        if kind in BOOK_DECIMALS:  # indexed: its key fits the int64 arrays
            assert abs(book_key(level, BOOK_DECIMALS[kind])[0]) < 2**62


# --- properties over generated extremes -----------------------------------------------------

SPELLINGS = ["NaN", "-nan", "sNaN", "inf", "-Infinity", "1e309", "1E+999999999", "0x10",
             "1_000", "", " ", "-0", "\u0661\u0662\u0663", "\uff11\uff12\uff13", "\u00b2"]  # fmt: skip


def numbers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(SPELLINGS),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.builds("{}e{}".format, st.integers(-(10**6), 10**6), st.integers(-(10**7), 10**7)),
        st.text("0123456789", min_size=1, max_size=3000),
        st.integers(),
        st.floats(),
        st.text(max_size=20),
    )


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(list(AlertKind)),
    threshold=numbers(),
    margin=st.one_of(st.none(), numbers()),
    cooldown=st.one_of(st.none(), st.integers(), st.text(max_size=30)),
    expires=st.one_of(st.none(), st.integers(), st.text("0123456789", max_size=30)),
)
def test_property_a_definition_is_within_its_bounds_or_refused_with_invalid_alert(
    kind: AlertKind, threshold: Any, margin: Any, cooldown: Any, expires: Any
) -> None:
    fields = {"mode": Mode.RECURRING, "rearm_margin": margin, "cooldown_s": cooldown,
              "expires_at": expires}  # fmt: skip
    try:
        rule = parsed(kind, threshold, **fields)
    except InvalidAlert:
        return
    bounds = THRESHOLD_BOUNDS[kind]
    t = rule.threshold
    assert t == (D(threshold.strip()) if isinstance(threshold, str) else D(threshold))
    assert (bounds.low <= t if bounds.inclusive else bounds.low < t) and t <= bounds.high
    assert has_places(t, bounds.decimals)
    assert 0 <= rule.rearm_margin < 1 and has_places(rule.rearm_margin, REARM_MARGIN_DECIMALS)
    assert 0 <= rule.cooldown_s <= MAX_COOLDOWN_S
    assert rule.expires_at is None or 0 <= rule.expires_at <= MAX_TIME_MS
    rearm_level(rule)  # exact at every accepted value (its context traps Inexact)


@settings(max_examples=200, deadline=None)
@given(
    email=st.one_of(
        st.text(max_size=80),
        st.builds("{}@{}.{}".format, st.text(max_size=100), st.text(max_size=100),
                  st.text(max_size=70)),
        st.builds("{}@example.com".format, st.text("ab", min_size=60, max_size=70)),
    )
)  # fmt: skip
def test_property_an_email_is_stored_trimmed_and_lower_cased_or_refused(email: str) -> None:
    try:
        stored = check_email(email)
    except Refused as exc:
        assert str(exc).startswith("email")
        return
    local, _, domain = stored.rpartition("@")
    assert stored == email.strip().lower() and stored.isprintable() and email.isprintable()
    assert len(stored) <= MAX_EMAIL_CHARS and 0 < len(local) <= MAX_EMAIL_LOCAL_CHARS
    assert "." in domain and " " not in stored


# --- a new alert's times ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "at", "ok"),
    [
        ("expires_at", NOW, False),
        ("expires_at", NOW + 1, True),
        ("expires_at", NOW + MAX_SCHEDULE_AHEAD_MS, True),
        ("expires_at", NOW + MAX_SCHEDULE_AHEAD_MS + 1, False),
        ("expires_at", 0, False),
        ("snooze_until", NOW - 1, False),
        ("snooze_until", NOW + 60_000, True),
        ("snooze_until", MAX_TIME_MS, False),
    ],
)
def test_given_a_new_alerts_times_when_checked_then_only_the_next_five_years_pass(
    field: str, at: int, ok: bool
) -> None:
    rule = parsed(AlertKind.PRICE_ABOVE, "100", **{field: at})
    if ok:
        check_schedule(rule, NOW)
        return
    with pytest.raises(Refused, match=f"^{field} "):
        check_schedule(rule, NOW)


def test_given_cli_durations_and_times_when_extreme_then_usage_errors_naming_the_option() -> None:
    clock = ManualClock(wall_ms=NOW)
    assert parse_duration("999999999d", "--cooldown") == 999_999_999 * 86_400
    assert parse_when("+5m", "--expires", clock) == NOW + 300_000
    assert parse_when("2026-12-01T12:00:00.999999Z", "--expires") == 1_796_126_400_999
    assert parse_when("999999999999999", "--expires") == 999_999_999_999_999
    for bad in ("1000000000d", "\u0661", "\uff15m", "5\x00m", "5 m", "-5", "1w", ""):
        with pytest.raises(UsageError, match=r"^--cooldown must be a duration"):
            parse_duration(bad, "--cooldown")
    for bad in ("1000000000000000", "+1000000000d", "\u0661\u0662", "soon", "2026-13-01"):
        with pytest.raises(UsageError, match=r"^--expires must be"):
            parse_when(bad, "--expires", clock)

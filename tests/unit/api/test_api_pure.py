"""The API's pure parts: key format and digests, cursors, the rate-limit decision, which
field a refusal names, how refusals map to status codes, and the scrubbing of keys."""

from __future__ import annotations

import hashlib
import inspect
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.access.api_keys import KeyRefused, check_name, digest, new_key, prefix_of
from domain.alerts.definition import field_of
from domain.alerts.manage import NotFound, OverQuota, Refused, UnknownCoin
from runtime.observability import ROUTINE_MESSAGES, Scrubber, outbound_url
from runtime.rate_limit import WINDOW_MS, decide
from workers.api.errors import ApiError, from_refusal
from workers.api.pagination import decode, encode

# --- keys ----------------------------------------------------------------------------------


def test_a_new_key_carries_its_prefix_and_256_random_bits() -> None:
    prefix, key = new_key()
    assert re.fullmatch(r"hw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key)
    assert prefix_of(key) == prefix
    assert new_key()[1] != key
    assert digest(key) == hashlib.sha256(key.encode()).hexdigest()


@pytest.mark.parametrize(
    "text", ["", "hw_", "hw_0123456789ab", "hw_0123456789abX", "hw_0123456789AB_x", "xx_0123456789ab_x",
             "Bearer hw_0123456789ab_x"],
)  # fmt: skip
def test_a_malformed_key_has_no_prefix(text: str) -> None:
    assert prefix_of(text) is None


@given(st.text(max_size=80))
def test_any_text_is_a_prefix_or_none_never_an_error(text: str) -> None:
    prefix = prefix_of(text)
    assert prefix is None or (len(prefix) == 12 and text.startswith(f"hw_{prefix}_"))
    assert len(digest(text)) == 64


def test_a_key_name_is_printable_and_bounded() -> None:
    assert check_name("ci bot") == "ci bot"
    with pytest.raises(KeyRefused, match="at most 100"):
        check_name("x" * 101)
    with pytest.raises(KeyRefused, match="printable"):
        check_name("bad\nname")


# --- cursors -------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_a_cursor_gives_back_its_id(last_id: int) -> None:
    assert decode(encode(last_id)) == last_id


@pytest.mark.parametrize(
    "cursor", ["", "x", "!!", encode(1)[:-1] + "?", "YzE6LTE", "YzE6OTk5OTk5OTk5OTk5OTk5OTk5OQ"]
)
def test_a_cursor_the_api_did_not_give_is_422_naming_cursor(cursor: str) -> None:
    with pytest.raises(ApiError) as info:
        decode(cursor)
    assert info.value.status == 422 and info.value.body.error.field == "cursor"


def test_no_cursor_is_the_first_page() -> None:
    assert decode(None) is None


# --- rate limit ----------------------------------------------------------------------------


def test_the_limit_allows_up_to_its_count_then_refuses_until_the_minute_ends() -> None:
    start = 1_700_000_000_000 - 1_700_000_000_000 % WINDOW_MS
    assert decide(5, 5, start).allowed and decide(5, 5, start).remaining == 0
    refused = decide(6, 5, start + 59_500)
    assert not refused.allowed and refused.reset_s == 1
    assert decide(1, 5, start).reset_s == 60
    assert decide(6, 5, start + 10_001).reset_s == 50


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("unknown alert kind 'x'; expected one of …", "kind"),
        ("'b c' is not a coin name as Hyperliquid spells it", "coin"),
        ("price_move_pct needs window_s, the time window in seconds", "window_s"),
        ("window_s and direction apply only to price_move_pct", "window_s"),
        ("price_move_pct does not take a price source (only …)", "price_source"),
        ("a value cannot fall by 100 % or more, so this price_move_pct alert could never fire",
         "threshold"),
        ("wallet_liquidated needs the tracked wallet's address", "wallet"),
        ("stale_data needs stream, one of mids", "stream"),
        ("rearm_margin must be a fraction", "rearm_margin"),
        ("an alert needs a kind", "kind"),
        ("something else entirely", None),
    ],
)  # fmt: skip
def test_a_refusal_names_the_field_it_speaks_of_first(message: str, field: str | None) -> None:
    assert field_of(message) == field


@pytest.mark.parametrize(
    ("refusal", "status", "code"),
    [
        (NotFound("alert 1 does not exist"), 404, "not_found"),
        (OverQuota("tier allows 2"), 409, "over_quota"),
        (UnknownCoin("unknown coin 'X'", "coin"), 422, "unknown_coin"),
        (Refused("bad threshold", "threshold"), 422, "invalid"),
        (Refused("channel 1 is used by active alert(s) 2"), 409, "conflict"),
    ],
)
def test_refusals_map_to_their_status(refusal: Refused, status: int, code: str) -> None:
    error = from_refusal(refusal)
    assert (error.status, error.body.error.code) == (status, code)
    assert error.body.error.message == str(refusal)


# --- secrets in telemetry ------------------------------------------------------------------


def test_an_api_key_in_any_text_keeps_only_its_prefix() -> None:
    _, key = new_key()
    scrubbed = Scrubber().text(f"calling with {key} failed; header Bearer {key}")
    assert key not in scrubbed and key[:16] in scrubbed


def test_uvicorn_access_lines_are_routine() -> None:
    from uvicorn.protocols.http import h11_impl

    assert ROUTINE_MESSAGES["uvicorn.access"][0] in inspect.getsource(h11_impl)


def test_outgoing_request_urls_keep_only_their_host_in_spans_and_breadcrumbs() -> None:
    scrubber = Scrubber()
    url = "https://chat.example/services/T0/B0/s3cretPath?token=x"
    event = scrubber.event({"spans": [
        {"op": "http.client", "description": f"POST {url}", "data": {"url": url, "http.query": "token=x"}},
        {"op": "db", "description": "SELECT 1"},
    ]})  # fmt: skip
    crumb = scrubber.breadcrumb({"type": "http", "category": "httplib", "data": {"url": url}})
    assert event["spans"][0]["description"] == "POST https://chat.example/[Filtered]"
    assert event["spans"][0]["data"] == {
        "url": "https://chat.example/[Filtered]",
        "http.query": "[Filtered]",
    }
    assert event["spans"][1]["description"] == "SELECT 1"
    assert crumb["data"]["url"] == "https://chat.example/[Filtered]"
    assert outbound_url("http://u:p@h:1/") == "http://[Filtered]@h:1"
    assert outbound_url("not a url") == "not a url"


def test_access_lines_lose_their_query_string_and_keep_the_rest() -> None:
    import logging

    from workers.api.observe import PathOnly

    args = ("127.0.0.1:5", "GET", "/v1/me?api_key=hw_0123456789ab_secret", "1.1", 401)
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', args, None
    )
    assert PathOnly().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /v1/me?… HTTP/1.1" 401'
    plain = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "%s", ("x",), None)
    assert PathOnly().filter(plain) and plain.getMessage() == "x"

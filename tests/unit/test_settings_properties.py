"""Settings, property-based: whatever the environment holds — extreme numbers, NaN and
infinity spelled every way, digits of other scripts, control characters, overlong text,
malformed URLs — :func:`settings.load_settings` either loads (every number finite and within
bounds) or raises :class:`SettingsError` naming a variable that was set; never anything
else."""

from __future__ import annotations

import math
import os
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from settings import MAX_SETTING_NUMBER, Settings, SettingsError, load_settings

# DATA_DIR is a path the test fixture points at a temporary directory: left alone.
NUMERIC = sorted(
    name
    for name, field in Settings.model_fields.items()
    if field.annotation in (int, float) and name != "data_dir"
)
TEXTUAL = sorted(
    name
    for name, field in Settings.model_fields.items()
    if name not in NUMERIC and name != "data_dir"
)
URLS = [name for name in TEXTUAL if name.endswith(("_url", "_base"))]

# What an environment variable can hold: any text but NUL and lone surrogates.
ENV_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
CONTROL = st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp"], exclude_characters="\x00"))
SPELLINGS = [
    "inf", "-inf", "+inf", "Infinity", "-Infinity", "INF", "nan", "NaN", "-nan", "sNaN",
    "1e309", "-1e309", "1e-400", "1E+999999999", "0x10", "0b1", "1_000", "1,5", " 12 ",
    "", " ", "true", "-0", "+5", ".5", "5.", "1e3",
    # Arabic-Indic 123, fullwidth 123, Arabic-Indic 3.5, N'Ko 1, superscript 2
    "\u0661\u0662\u0663", "\uff11\uff12\uff13", "\u0663.\u0665", "\u07c1", "\u00b2",
]  # fmt: skip


def number_texts() -> st.SearchStrategy[str]:
    digits = st.text("0123456789", min_size=1, max_size=5000)
    return st.one_of(
        st.sampled_from(SPELLINGS),
        st.integers().map(str),
        st.integers(-2 * MAX_SETTING_NUMBER, 2 * MAX_SETTING_NUMBER).map(str),
        st.floats().map(repr),
        st.builds("{}e{}".format, st.integers(-(10**6), 10**6), st.integers(-(10**5), 10**5)),
        digits,
        digits.map("-{}".format),
        digits.map("0.{}".format),
        st.builds("{}{}{}".format, st.integers(0, 100), CONTROL, st.integers(0, 100)),
        st.text(ENV_CHARS, max_size=30),
    )


def url_texts() -> st.SearchStrategy[str]:
    scheme = st.sampled_from(
        ["http://", "https://", "ws://", "wss://", "redis://", "rediss://", "unix://",
         "postgresql+psycopg2://", "postgresql://", "sqlite:///", "ftp://", "", "HTTP://"]
    )  # fmt: skip
    host = st.one_of(
        st.sampled_from(["127.0.0.1", "localhost", "[::1]", "example.com", "", "a" * 300]),
        st.text(ENV_CHARS, max_size=40),
    )
    port = st.one_of(
        st.just(""), st.integers(-5, 10**20).map(":{}".format), st.text(ENV_CHARS, max_size=5)
    )
    rest = st.one_of(
        st.just(""),
        st.just("/db"),
        st.text(ENV_CHARS, max_size=40).map("/{}".format),
        CONTROL.map("/x{}".format),
        st.just("/" + "p" * 5000),
    )
    userinfo = st.one_of(st.just(""), st.just("user:pa:ss@"), st.just("u:p@"), st.just("@"))
    return st.builds("{}{}{}{}{}".format, scheme, userinfo, host, port, rest)


def any_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(ENV_CHARS, max_size=60),
        st.text(ENV_CHARS, min_size=1000, max_size=3000),
        CONTROL,
        number_texts(),
        url_texts(),
    )


@st.composite
def environments(draw: st.DrawFn) -> dict[str, str]:
    env: dict[str, str] = {}
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["number", "number", "url", "text"]))
        if kind == "number":
            env[draw(st.sampled_from(NUMERIC)).upper()] = draw(number_texts())
        elif kind == "url":
            env[draw(st.sampled_from(URLS)).upper()] = draw(url_texts())
        else:
            env[draw(st.sampled_from(TEXTUAL)).upper()] = draw(any_texts())
    return env


def test_the_generated_surfaces_cover_the_numeric_and_url_settings() -> None:
    # The property below is only as wide as these lists: numbers and durations, and URLs.
    assert {"alert_max_age_s", "ingest_batch_size", "notify_timeout_s", "flower_port"} <= set(
        NUMERIC
    )
    assert {"database_url", "redis_url", "broker_url", "hl_ws_url", "hl_info_url"} <= set(URLS)


@settings(max_examples=200, deadline=None)
@given(env=environments())
def test_property_settings_load_or_name_the_variable_and_never_raise_anything_else(
    env: dict[str, str],
) -> None:
    with mock.patch.dict(os.environ, env):
        try:
            loaded = load_settings()
        except SettingsError as exc:
            # Then one line naming a variable that was set (a cross-field problem names the
            # other variable and this one: "less than twice PING_INTERVAL_S")
            message = str(exc)
            assert "\n" not in message and "\r" not in message, message
            assert any(name in message for name in env), (env, message)
            return
    # Or it loaded: every number is finite and within the bound every numeric setting has
    numbers: dict[str, Any] = {name: getattr(loaded, name) for name in NUMERIC}
    for name, value in numbers.items():
        assert math.isfinite(value) and abs(value) <= MAX_SETTING_NUMBER, (name, value)

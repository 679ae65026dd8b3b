"""Flower's guard (workers/flower_guard.py): credentials whenever it listens beyond
loopback, unless explicitly and loudly opted out; no trivially weak password anywhere."""

from __future__ import annotations

from typing import Any

import pytest

from workers.flower_guard import check, is_loopback, weak_credential

STRONG = "ops:7f3c9e1a5b2d8c4e"


def verdict(**given: Any):
    options: dict[str, Any] = {
        "address": "127.0.0.1", "port": 5555, "unix_socket": False, "basic_auth": [],
        "oauth": False, "allow_unauthenticated": False,
    }  # fmt: skip
    return check(**{**options, **given})


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("LOCALHOST", True), ("0.0.0.0", False), ("", False), ("::", False),
     ("10.0.0.1", False), ("localhost.example.com", False), ("flower", False)],
)  # fmt: skip
def test_only_loopback_addresses_count_as_this_machine(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.168.1.4", "flower.internal"])
def test_beyond_loopback_without_credentials_flower_is_refused(address: str) -> None:
    refused = verdict(address=address).refusal
    assert refused is not None and "without FLOWER_BASIC_AUTH" in refused
    assert f"{address or 'every interface'}:5555" in refused


@pytest.mark.parametrize(
    "given",
    [{"address": "127.0.0.1"}, {"address": "0.0.0.0", "basic_auth": [STRONG]},
     {"address": "0.0.0.0", "unix_socket": True}, {"address": "0.0.0.0", "oauth": True}],
)  # fmt: skip
def test_loopback_a_unix_socket_or_credentials_let_flower_start_quietly(given: dict) -> None:
    assert verdict(**given).refusal is None and verdict(**given).warning is None


def test_the_opt_out_starts_flower_without_credentials_and_says_so() -> None:
    opted = verdict(address="0.0.0.0", allow_unauthenticated=True)
    assert opted.refusal is None
    assert opted.warning is not None and "WITHOUT AUTHENTICATION" in opted.warning
    # on loopback there is nothing to warn about
    assert verdict(allow_unauthenticated=True).warning is None


@pytest.mark.parametrize(
    ("pairs", "why"),
    [
        (["ops:s3cret-pass"], "fewer than 12 characters"),
        (["ops:aaaaaaaaaaaaaaaa"], "fewer than 5 different characters"),
        (["ops:abababababab"], "fewer than 5 different characters"),
        (["operator:Operator-2024!"], "it is the user name"),
        (["ops:password1234"], "a well-known default"),
        (["ops:Password-123!"], "a well-known default"),
        (["ops:CHANGE-ME-CHANGE-ME"], "a well-known default"),
        (["ops:admin_admin_2024"], "a well-known default"),
        ([STRONG, "viewer:flower123456"], "a well-known default"),
    ],
)
def test_a_trivially_weak_password_is_refused_naming_the_user_only(
    pairs: list[str], why: str
) -> None:
    refused = verdict(basic_auth=pairs).refusal
    assert refused is not None and why in refused
    user, _, password = pairs[-1].partition(":")
    assert f"user {user!r}" in refused and password not in refused
    # wherever Flower listens
    assert verdict(address="0.0.0.0", basic_auth=pairs).refusal == refused


@pytest.mark.parametrize("pairs", [["justauser"], ["ops:"], [":7f3c9e1a5b2d8c4e"], [""]])
def test_a_pair_that_is_not_user_password_is_refused(pairs: list[str]) -> None:
    assert (
        weak_credential(pairs)
        == "FLOWER_BASIC_AUTH must be user:password pairs separated by commas"
    )


@pytest.mark.parametrize(
    "pairs",
    [[STRONG], ["ops:flower-Secr3t-5b3e90"], ["ops:correct horse battery"],
     [STRONG, "viewer:otherpass9-x7q"]],
)  # fmt: skip
def test_a_reasonable_password_is_accepted(pairs: list[str]) -> None:
    assert weak_credential(pairs) is None

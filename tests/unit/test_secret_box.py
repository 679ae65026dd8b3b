"""Sealing and opening channel credentials (models/secret_box.py), and the key setting."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from models.secret_box import PREFIX, SecretBox, SecretUnavailable
from settings import SettingsError, load_settings

K1, K2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
TOKEN = "123456:ABC-bot-token"


def test_given_keys_when_sealed_then_prefixed_unreadable_and_opened_back() -> None:
    box = SecretBox.from_keys(K1)
    sealed = box.seal(TOKEN)
    assert sealed.startswith(PREFIX) and TOKEN not in sealed
    assert box.seal(TOKEN) != sealed  # a fresh IV every time
    assert box.open(sealed) == TOKEN


def test_given_no_keys_then_values_are_stored_and_read_as_they_are() -> None:
    box = SecretBox.from_keys(None)
    assert not box.encrypts
    assert box.seal(TOKEN) == TOKEN and box.open(TOKEN) == TOKEN


def test_given_a_plain_value_stored_before_keys_were_set_then_it_is_read_as_it_is() -> None:
    assert SecretBox.from_keys(K1).open(TOKEN) == TOKEN


def test_given_a_new_key_first_then_old_values_open_and_new_ones_use_the_new_key() -> None:
    old = SecretBox.from_keys(K1).seal(TOKEN)
    rotated = SecretBox.from_keys(f"{K2}, {K1}")
    assert rotated.open(old) == TOKEN
    assert SecretBox.from_keys(K2).open(rotated.seal(TOKEN)) == TOKEN


@pytest.mark.parametrize(
    ("reader", "says"),
    [
        (SecretBox.from_keys(None), "CHANNEL_SECRET_KEYS is not set"),
        (SecretBox.from_keys(K2), "not in CHANNEL_SECRET_KEYS"),
    ],
)
def test_given_a_sealed_value_and_not_its_key_then_the_error_names_the_setting(
    reader: SecretBox, says: str
) -> None:
    sealed = SecretBox.from_keys(K1).seal(TOKEN)
    with pytest.raises(SecretUnavailable, match=says):
        reader.open(sealed)


def test_given_a_tampered_value_then_it_is_refused_not_misread() -> None:
    sealed = SecretBox.from_keys(K1).seal(TOKEN)
    flipped = sealed[:-5] + ("A" if sealed[-5] != "A" else "B") + sealed[-4:]
    with pytest.raises(SecretUnavailable):
        SecretBox.from_keys(K1).open(flipped)


def test_given_a_bad_key_in_the_setting_then_start_up_stops_naming_the_variable_not_the_value() -> (
    None
):
    with pytest.raises(SettingsError) as caught:
        load_settings(channel_secret_keys=f"{K1},not-a-key-value")
    message = str(caught.value)
    assert "CHANNEL_SECRET_KEYS" in message and "key 2 is not a Fernet key" in message
    assert "not-a-key-value" not in message and K1 not in message


def test_given_an_empty_setting_then_encryption_is_off() -> None:
    assert load_settings(channel_secret_keys=" ").channel_secret_keys is None


def test_new_keys_are_valid_and_distinct() -> None:
    a, b = SecretBox.new_key(), SecretBox.new_key()
    assert a != b and SecretBox.from_keys(f"{a},{b}").encrypts

"""``/v1/channels`` and ``/v1/wallets`` over real HTTP: secrets are write-only, the SSRF
guard refuses private targets, a test send is a real signed delivery, wallets keep their
quota and untracking deactivates their alerts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from domain.notify.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.integration.notify.receiver import Receiver, receiving
from tests.support.api import ApiClient

pytestmark = pytest.mark.integration

SECRET = "whsec-api-test-0123456789abcdef"


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def test_a_webhook_channel_never_shows_its_secret_and_its_test_send_is_signed(
    api: ApiClient, receiver: Receiver
) -> None:
    # Given a subscriber who adds a webhook channel with their own secret, and one without
    ann = api.subscriber("ann@example.com")
    own = api.as_(ann, "POST", "/v1/channels", json={
        "kind": "webhook", "target": receiver.url() + "?token=abc", "secret": SECRET, "name": "ops"})  # fmt: skip
    made = api.as_(ann, "POST", "/v1/channels", json={"kind": "webhook", "target": receiver.url()})

    # Then neither answer nor listing holds the given secret or the URL's query string;
    # a generated signing secret is in its creation's answer only
    assert own.status_code == 201 and made.status_code == 201
    assert own.json()["signing_secret"] is None and own.json()["secret_set"] is True
    generated = made.json()["signing_secret"]
    assert generated and len(generated) >= 32
    listing = api.as_(ann, "GET", "/v1/channels").text
    assert SECRET not in listing and generated not in listing and "abc" not in listing
    assert json.loads(listing)["items"][0]["target"].endswith("/hook?***")

    # When the channel is test-sent
    sent = api.as_(ann, "POST", f"/v1/channels/{own.json()['id']}/test")

    # Then the receiver got one request signed with the secret, and the answer says so
    assert sent.status_code == 200 and sent.json()["delivered"] is True, sent.text
    [request] = receiver.received()
    assert json.loads(request.body)["test"] is True
    assert verify(SECRET, request.headers[TIMESTAMP_HEADER], request.body,
                  request.headers[SIGNATURE_HEADER], now_s=time.time())  # fmt: skip


def test_a_test_send_that_fails_says_why_without_the_secret(api: ApiClient) -> None:
    ann = api.subscriber("ann@example.com")
    channel = api.as_(ann, "POST", "/v1/channels", json={
        "kind": "webhook", "target": "http://127.0.0.1:9/closed", "secret": SECRET}).json()  # fmt: skip
    sent = api.as_(ann, "POST", f"/v1/channels/{channel['id']}/test")
    assert sent.status_code == 200 and sent.json()["delivered"] is False
    assert sent.json()["detail"] and SECRET not in sent.text


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            {"kind": "webhook", "target": "http://169.254.169.254/latest/meta-data"},
            "target",
            "link-local",
        ),
        ({"kind": "webhook", "target": "http://10.1.2.3/hook"}, "target", "private"),
        ({"kind": "webhook", "target": "file:///etc/passwd"}, "target", "cannot be used"),
        (
            {"kind": "slack", "target": "http://169.254.169.254/services/T0/B0/secretpath"},
            "target",
            "cannot be used",
        ),
        ({"kind": "telegram", "target": "12345"}, "secret", "bot token"),
        ({"kind": "pigeon"}, "kind", "channel kind"),
        ({"kind": "redis", "name": "x" * 101}, "name", "at most 100"),
    ],
)
def test_a_bad_channel_is_422_naming_the_field_and_nothing_is_stored(
    api: ApiClient, body: dict[str, object], field: str, words: str
) -> None:
    ann = api.subscriber("ann@example.com")
    answer = api.as_(ann, "POST", "/v1/channels", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == field and words in error["message"], error
    assert "secretpath" not in answer.text  # a Slack URL is a credential: never echoed
    assert api.as_(ann, "GET", "/v1/channels").json()["items"] == []


def test_a_channel_in_use_is_409_and_removable_once_free(api: ApiClient) -> None:
    ann = api.subscriber("ann@example.com")
    channel = api.as_(ann, "POST", "/v1/channels", json={"kind": "redis"}).json()["id"]
    alert = api.as_(ann, "POST", "/v1/alerts", json={
        "kind": "price_above", "coin": "ETH", "threshold": "1", "channel_id": channel}).json()["id"]  # fmt: skip
    in_use = api.as_(ann, "DELETE", f"/v1/channels/{channel}")
    assert (
        in_use.status_code == 409
        and f"active alert(s) {alert}" in in_use.json()["error"]["message"]
    )
    api.as_(ann, "POST", f"/v1/alerts/{alert}/pause")
    assert api.as_(ann, "DELETE", f"/v1/channels/{channel}").status_code == 204
    assert api.as_(ann, "GET", f"/v1/channels/{channel}").status_code == 404


def test_wallets_are_tracked_once_within_the_quota_and_untracking_pauses_their_alerts(
    api: ApiClient,
) -> None:
    # Given a free subscriber (1 wallet in this server's settings) tracking one wallet
    bob = api.subscriber("bob@example.com", tier="free")
    wallet = "0x" + "AB" * 20
    first = api.as_(bob, "POST", "/v1/wallets", json={"address": wallet, "label": "whale"})
    assert first.status_code == 201 and first.json()["created"] is True
    assert first.json()["address"] == wallet.lower()

    # When it is tracked again, and another one is asked for
    again = api.as_(bob, "POST", "/v1/wallets", json={"address": wallet.lower()})
    second = api.as_(bob, "POST", "/v1/wallets", json={"address": "0x" + "cd" * 20})
    bad = api.as_(bob, "POST", "/v1/wallets", json={"address": "0x123"})

    # Then tracking twice is no error and no quota use; the second is over quota
    assert again.status_code == 201 and again.json()["created"] is False
    assert second.status_code == 409 and second.json()["error"]["code"] == "over_quota"
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "address"

    # And untracking deactivates the wallet's alerts, named in the answer
    channel = api.as_(bob, "POST", "/v1/channels", json={"kind": "redis"}).json()["id"]
    alert = api.as_(bob, "POST", "/v1/alerts", json={
        "kind": "wallet_liquidated", "coin": "BTC", "threshold": "1000", "wallet": wallet.lower(),
        "channel_id": channel})  # fmt: skip
    assert alert.status_code == 201, alert.text
    gone = api.as_(bob, "DELETE", f"/v1/wallets/{wallet}")
    assert gone.json() == {"address": wallet.lower(), "deactivated_alerts": [alert.json()["id"]]}
    assert api.as_(bob, "GET", f"/v1/alerts/{alert.json()['id']}").json()["active"] is False
    assert api.as_(bob, "GET", "/v1/wallets").json()["items"] == []
    assert api.as_(bob, "DELETE", f"/v1/wallets/{wallet}").status_code == 404


def test_concurrent_tracks_of_one_wallet_store_it_once_and_never_fail_with_a_5xx(
    api: ApiClient,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # Given a subscriber, when eight requests track the same wallet at once
    ann = api.subscriber("ann@example.com")
    body = {"address": "0x" + "ef" * 20}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: api.as_(ann, "POST", "/v1/wallets", json=body), range(8)))

    # Then each answer is a success or a conflict to retry, and the wallet is stored once
    # (under the race, more than one answer may report creating it: the domain checks, then
    # the repository's idempotent track finds the row a concurrent request just committed)
    assert {a.status_code for a in answers} <= {201, 409}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers if a.status_code == 201}) == 1
    assert len(api.as_(ann, "GET", "/v1/wallets").json()["items"]) == 1

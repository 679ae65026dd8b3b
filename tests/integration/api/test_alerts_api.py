"""``/v1/alerts`` over real HTTP against a running ``hyperwatch api``: the CLI's checks and
wording, quotas, nothing half-created, announcements to the workers, pagination."""

from __future__ import annotations

import pytest
import redis
from click.testing import CliRunner

from models.db import Database
from runtime import keys
from tests.support.api import ApiClient, ApiProcess, Subscriber
from workers.cli import cli

pytestmark = pytest.mark.integration


def _channel(api: ApiClient, who: Subscriber) -> int:
    answer = api.as_(who, "POST", "/v1/channels", json={"kind": "redis", "name": "mine"})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _alert(channel: int, **fields: object) -> dict[str, object]:
    return {"kind": "price_above", "coin": "BTC", "threshold": "100000.5", "channel_id": channel,
            **fields}  # fmt: skip


def test_an_alert_is_created_read_paused_resumed_snoozed_and_deleted(
    api: ApiClient, redis_url: str
) -> None:
    # Given a subscriber with a channel
    ann = api.subscriber("ann@example.com")
    channel = _channel(api, ann)
    version = redis.Redis.from_url(redis_url)

    # When they create an alert
    created = api.as_(ann, "POST", "/v1/alerts", json=_alert(channel, mode="recurring",
                                                              cooldown_s=60))  # fmt: skip

    # Then it is stored exactly as given, armed, and the workers are told
    assert created.status_code == 201, created.text
    alert = created.json()
    assert (alert["coin"], alert["threshold"], alert["mode"], alert["cooldown_s"]) == (
        "BTC", "100000.5", "recurring", 60)  # fmt: skip
    assert alert["active"] and alert["armed"]
    assert int(version.get(keys.ALERTS_VERSION.name()) or 0) >= 1
    path = f"/v1/alerts/{alert['id']}"
    assert api.as_(ann, "GET", path).json() == alert

    # And it can be paused, resumed, snoozed and deleted
    assert api.as_(ann, "POST", f"{path}/pause").json()["active"] is False
    assert api.as_(ann, "POST", f"{path}/pause").json()["active"] is False  # idempotent
    assert api.as_(ann, "POST", f"{path}/resume").json()["active"] is True
    until = 4_102_444_800_000  # 2100: beyond five years
    too_far = api.as_(ann, "POST", f"{path}/snooze", json={"until": until})
    assert too_far.status_code == 422 and too_far.json()["error"]["field"] == "snooze_until"
    import time

    soon = int(time.time() * 1000) + 3_600_000
    assert (
        api.as_(ann, "POST", f"{path}/snooze", json={"until": soon}).json()["snooze_until"] == soon
    )
    assert (
        api.as_(ann, "POST", f"{path}/snooze", json={"until": None}).json()["snooze_until"] is None
    )
    assert api.as_(ann, "DELETE", path).status_code == 204
    assert api.as_(ann, "GET", path).status_code == 404
    version.close()


def test_a_bad_definition_is_422_naming_the_field_in_the_clis_words(
    api: ApiClient, api_process: ApiProcess
) -> None:
    # Given a subscriber with a channel, and the same one known to the CLI
    ann = api.subscriber("ann@example.com")
    channel = _channel(api, ann)

    # When a window alert comes without its window, through the API and the CLI
    answer = api.as_(ann, "POST", "/v1/alerts", json=_alert(channel, kind="price_move_pct",
                                                             threshold="5"))  # fmt: skip
    cli_env = {k: v for k, v in api_process.env.items() if k.isupper() and k != "PYTHONPATH"}
    printed = CliRunner().invoke(
        cli, ["alerts", "add", "--user", ann.email, "--coin", "BTC", "--kind", "price_move_pct",
              "--threshold", "5", "--channel", str(channel)], env=cli_env,
    )  # fmt: skip

    # Then the API says 422, names the field, and words it as the CLI does
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "window_s" and error["code"] == "invalid"
    assert printed.exit_code == 2
    assert printed.stderr.strip() == f"hyperwatch: {error['message']}"


@pytest.mark.parametrize(
    ("fields", "status", "code", "field", "words"),
    [
        ({"coin": "DOGE"}, 422, "unknown_coin", "coin", "unknown coin 'DOGE'"),
        ({"threshold": 1.5}, 422, "invalid", "threshold", "not a float"),
        ({"threshold": "-1"}, 422, "invalid", "threshold", "above zero"),
        ({"kind": "price_sideways"}, 422, "invalid", "kind", "unknown alert kind"),
        ({"coin": "BTC", "wallet": "0x" + "a" * 40}, 422, "invalid", "wallet", "a wallet applies"),
        ({"channel_id": 999999}, 422, "invalid", "channel_id", "channel 999999 does not exist"),
        ({"expires_at": 1}, 422, "invalid", "expires_at", "not in the future"),
        ({"colour": "red"}, 422, "invalid", "colour", "unknown field"),
        ({"coin": "B\u0000TC"}, 422, "invalid", "coin", "NUL"),
    ],
)
def test_every_refusal_says_what_and_creates_nothing(
    api: ApiClient, fields: dict[str, object], status: int, code: str, field: str, words: str
) -> None:
    # Given a subscriber with a channel
    ann = api.subscriber("ann@example.com")
    body = _alert(_channel(api, ann))
    body.update(fields)

    # When the alert is refused
    answer = api.as_(ann, "POST", "/v1/alerts", json=body)

    # Then the answer says which field and why, and nothing was stored
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert words in error["message"]
    assert api.as_(ann, "GET", "/v1/alerts").json()["items"] == []


def test_the_tiers_alert_quota_is_409_and_a_paused_alert_frees_a_slot(api: ApiClient) -> None:
    # Given a free subscriber (2 alerts in this server's settings) with both in use
    bob = api.subscriber("bob@example.com", tier="free")
    channel = _channel(api, bob)
    first, _second = (api.as_(bob, "POST", "/v1/alerts", json=_alert(channel)) for _ in range(2))

    # When a third is asked for
    third = api.as_(bob, "POST", "/v1/alerts", json=_alert(channel))

    # Then it is refused as over quota, in the CLI's words, and nothing is added
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "over_quota"
    assert "already has 2 active alert(s) and the tier allows 2" in third.json()["error"]["message"]
    assert len(api.as_(bob, "GET", "/v1/alerts").json()["items"]) == 2
    # And resuming over the quota is refused the same way once a new one took the slot
    api.as_(bob, "POST", f"/v1/alerts/{first.json()['id']}/pause")
    assert api.as_(bob, "POST", "/v1/alerts", json=_alert(channel)).status_code == 201
    again = api.as_(bob, "POST", f"/v1/alerts/{first.json()['id']}/resume")
    assert again.status_code == 409 and again.json()["error"]["code"] == "over_quota"


def test_listings_page_with_cursors_and_filter_by_state(api: ApiClient) -> None:
    # Given five alerts, one paused
    ann = api.subscriber("ann@example.com")
    channel = _channel(api, ann)
    ids = [api.as_(ann, "POST", "/v1/alerts", json=_alert(channel)).json()["id"] for _ in range(5)]
    api.as_(ann, "POST", f"/v1/alerts/{ids[0]}/pause")

    # When they are read two at a time
    seen, cursor = [], None
    while True:
        page = api.as_(ann, "GET", "/v1/alerts", params={"limit": 2, "cursor": cursor}
                       if cursor else {"limit": 2}).json()  # fmt: skip
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    # Then every alert comes once, in order; the state filter works; a forged cursor is 422
    assert seen == ids
    active = api.as_(ann, "GET", "/v1/alerts", params={"active": "false"}).json()["items"]
    assert [a["id"] for a in active] == [ids[0]]
    forged = api.as_(ann, "GET", "/v1/alerts", params={"cursor": "not-a-cursor"})
    assert forged.status_code == 422 and forged.json()["error"]["field"] == "cursor"


def test_a_backtest_of_the_callers_alert_lists_its_firings_and_strangers_get_404(
    api: ApiClient, pg_database: Database
) -> None:
    from decimal import Decimal

    from models.repositories import AssetContextRepository
    from tests.integration.alerts.support import context

    # Given twelve stored minutes of BTC whose mark crosses 100,000.5 at minutes 3 and 9
    minute, t0 = 60_000, 1_760_130_000_000
    marks = ["99000", "99500", "100000", "100600", "101000", "99800", "99000", "99500",
             "100000", "100700", "100900", "99900"]  # fmt: skip
    with pg_database.session() as session:
        AssetContextRepository(session).add_batch(
            [context("BTC", t0 + i * minute, mark=m) for i, m in enumerate(marks)], minute
        )
    ann, bob = api.subscriber("ann@example.com"), api.subscriber("bob@example.com")
    channel = _channel(api, ann)
    created = api.as_(ann, "POST", "/v1/alerts", json=_alert(
        channel, price_source="mark", mode="recurring", cooldown_s=0, rearm_margin="0.001"))  # fmt: skip
    assert created.status_code == 201, created.text
    path = f"/v1/alerts/{created.json()['id']}/backtest"
    span = {"from_ms": t0, "to_ms": t0 + len(marks) * minute}

    # When its owner backtests it over those minutes
    answer = api.as_(ann, "POST", path, json=span)

    # Then it fired where the mark crossed the threshold, re-armed in between, and the
    # channel would have got each firing (no digest windows set)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert [f["event_time"] for f in report["fired"]] == [t0 + 3 * minute, t0 + 9 * minute]
    assert [Decimal(f["value"]) for f in report["fired"]] == [Decimal("100600"), Decimal("100700")]
    assert report["events"] == 2 * len(marks)  # each context, and the mid it carries
    assert report["channel_kind"] == "redis"
    assert [m["count"] for m in report["sent"]] == [1, 1]

    # And nobody else learns of it; bad spans are refused naming the field
    assert api.as_(bob, "POST", path, json=span).status_code == 404
    backwards = api.as_(ann, "POST", path, json={"from_ms": t0, "to_ms": t0})
    assert backwards.status_code == 422 and backwards.json()["error"]["field"] == "to_ms"
    too_long = api.as_(ann, "POST", path, json={"from_ms": t0, "to_ms": t0 + 8 * 86_400_000})
    assert too_long.status_code == 422 and "7 days" in too_long.json()["error"]["message"]

"""Who may see what, over real HTTP: every object is its owner's only (another user's is a
404 worded exactly as a missing one), keys are checked on every request (a revoked key
fails at once), the tier's rate limit answers 429 with Retry-After, bodies are bounded,
and no key reaches /metrics."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from models.db import Database
from models.notification import Notification
from tests.integration.api.conftest import FREE_REQUESTS_PER_MINUTE
from tests.support.api import ADMIN_KEY, ApiClient, ApiProcess, Subscriber

pytestmark = pytest.mark.integration

WALLET = "0x" + "ab" * 20


def _owned_objects(api: ApiClient, who: Subscriber) -> dict[str, int | str]:
    channel = api.as_(who, "POST", "/v1/channels", json={"kind": "redis"}).json()["id"]
    alert = api.as_(who, "POST", "/v1/alerts", json={
        "kind": "price_above", "coin": "BTC", "threshold": "1", "channel_id": channel}).json()["id"]  # fmt: skip
    assert api.as_(who, "POST", "/v1/wallets", json={"address": WALLET}).status_code == 201
    return {"channel": channel, "alert": alert, "wallet": WALLET}


def _attempts(ids: dict[str, int | str]) -> list[tuple[str, str, dict[str, object] | None]]:
    alert, channel, wallet = ids["alert"], ids["channel"], ids["wallet"]
    return [
        ("GET", f"/v1/alerts/{alert}", None),
        ("POST", f"/v1/alerts/{alert}/pause", None),
        ("POST", f"/v1/alerts/{alert}/resume", None),
        ("POST", f"/v1/alerts/{alert}/snooze", {"until": None}),
        ("DELETE", f"/v1/alerts/{alert}", None),
        ("GET", f"/v1/channels/{channel}", None),
        ("POST", f"/v1/channels/{channel}/test", None),
        ("DELETE", f"/v1/channels/{channel}", None),
        ("DELETE", f"/v1/wallets/{wallet}", None),
    ]


def _shape(answer: httpx.Response, ids: dict[str, int | str]) -> tuple[int, str]:
    """The answer with the object's own id taken out, so answers about two ids compare."""
    text = answer.text
    for value in ids.values():
        text = text.replace(str(value), "<id>")
    return answer.status_code, text.replace("bob@example.com", "<me>")


def test_another_users_objects_are_404_exactly_like_missing_ones(
    api: ApiClient, pg_database: Database
) -> None:
    # Given Ann's alert, channel, wallet and notification, and Bob with nothing
    ann, bob = api.subscriber("ann@example.com"), api.subscriber("bob@example.com")
    anns = _owned_objects(api, ann)
    missing: dict[str, int | str] = {"alert": 987654, "channel": 987655, "wallet": "0x" + "cd" * 20}
    with pg_database.session() as session:
        session.add(Notification(user_id=ann.user_id, channel_kind="redis", status="sent",
                                 payload={"message": "ann's"}, idempotency_key="ann-1"))  # fmt: skip

    # When Bob tries every operation on Ann's objects, and on objects that do not exist
    for (method, path, body), (m2, p2, b2) in zip(_attempts(anns), _attempts(missing), strict=True):
        theirs = api.as_(bob, method, path, json=body)
        absent = api.as_(bob, m2, p2, json=b2)

        # Then each is a 404 that reads exactly as the one for a missing object
        assert theirs.status_code == 404, (method, path, theirs.text)
        assert _shape(theirs, anns) == _shape(absent, missing), (method, path)

    # And Ann's things are untouched; Bob's listings never show them
    assert api.as_(ann, "GET", f"/v1/alerts/{anns['alert']}").json()["active"] is True
    assert api.as_(ann, "GET", f"/v1/channels/{anns['channel']}").status_code == 200
    assert [w["address"] for w in api.as_(ann, "GET", "/v1/wallets").json()["items"]] == [WALLET]
    for listing in ("/v1/alerts", "/v1/channels", "/v1/wallets", "/v1/notifications"):
        assert api.as_(bob, "GET", listing).json() == {"items": [], "next_cursor": None}
    assert len(api.as_(ann, "GET", "/v1/notifications").json()["items"]) == 1

    # And Ann's channel cannot carry Bob's alert: the same refusal as a channel that is not
    bobs = {"kind": "price_above", "coin": "BTC", "threshold": "1"}
    borrowed = api.as_(bob, "POST", "/v1/alerts", json={**bobs, "channel_id": anns["channel"]})
    invented = api.as_(bob, "POST", "/v1/alerts", json={**bobs, "channel_id": missing["channel"]})
    assert borrowed.status_code == 422
    assert _shape(borrowed, anns) == _shape(invented, missing)


def test_a_key_is_checked_on_every_request_and_a_revoked_one_fails_at_once(
    api: ApiClient, api_process: ApiProcess
) -> None:
    # Given a subscriber whose key works
    ann = api.subscriber("ann@example.com")
    assert api.as_(ann, "GET", "/v1/me").status_code == 200

    # When an operator revokes it
    revoked = api.admin("DELETE", f"/v1/admin/keys/{ann.key_id}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None

    # Then the very next request fails, as do a missing, a malformed and an invented key
    refused = api.as_(ann, "GET", "/v1/me")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert api.http.get("/v1/me").status_code == 401
    for key in (
        "nonsense",
        ann.key[:-1] + ("A" if ann.key[-1] != "A" else "B"),
        "hw_" + "0" * 12 + "_x",
    ):
        assert api.http.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    # And a new key works; the listing shows both, by prefix, never the key
    fresh = api.admin("POST", f"/v1/admin/users/{ann.user_id}/keys", json={}).json()["key"]
    assert api.http.get("/v1/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    listed = api.admin("GET", f"/v1/admin/users/{ann.user_id}/keys").text
    assert ann.key not in listed and fresh not in listed and ann.key[3:15] in listed


def test_a_deactivated_user_is_locked_out_and_a_tier_change_applies_at_once(api: ApiClient) -> None:
    ann = api.subscriber("ann@example.com", tier="free")
    assert api.as_(ann, "GET", "/v1/me").json()["quotas"]["max_alerts"] == 2
    api.admin("PATCH", f"/v1/admin/users/{ann.user_id}", json={"tier": "pro"})
    assert api.as_(ann, "GET", "/v1/me").json()["tier"] == "pro"
    api.admin("PATCH", f"/v1/admin/users/{ann.user_id}", json={"active": False})
    assert api.as_(ann, "GET", "/v1/me").status_code == 401


def test_the_admin_routes_take_only_the_admin_key(api: ApiClient) -> None:
    ann = api.subscriber("ann@example.com")
    assert api.as_(ann, "GET", "/v1/admin/users").status_code == 401
    assert api.http.get("/v1/admin/users").status_code == 401
    wrong = {"Authorization": f"Bearer {ADMIN_KEY[:-1]}x"}
    assert api.http.get("/v1/admin/users", headers=wrong).status_code == 401
    users = api.admin("GET", "/v1/admin/users").json()["items"]
    assert [u["email"] for u in users] == ["ann@example.com"]
    assert (
        api.admin("POST", "/v1/admin/users", json={"email": "ann@example.com"}).status_code == 409
    )
    bad = api.admin("POST", "/v1/admin/users", json={"email": "not-an-email"})
    assert bad.status_code == 422 and "is not an email address" in bad.json()["error"]["message"]
    tier = api.admin("POST", "/v1/admin/users", json={"email": "b@example.com", "tier": "gold"})
    assert tier.status_code == 422 and tier.json()["error"]["field"] == "tier"
    assert api.admin("DELETE", "/v1/admin/keys/424242").status_code == 404
    assert api.admin("POST", "/v1/admin/users/424242/keys", json={}).status_code == 404


def test_the_rate_limit_is_per_key_and_answers_429_with_retry_after(api: ApiClient) -> None:
    # Given two free subscribers (FREE_REQUESTS_PER_MINUTE each in this server's settings)
    ann, bob = api.subscriber("ann@example.com", "free"), api.subscriber("bob@example.com", "free")

    # When Ann uses up her minute
    answers = [api.as_(ann, "GET", "/v1/me") for _ in range(FREE_REQUESTS_PER_MINUTE + 1)]

    # Then the requests within the limit pass, counting down, and the next one is 429
    assert [a.status_code for a in answers[:-1]] == [200] * FREE_REQUESTS_PER_MINUTE
    assert answers[-2].headers["x-ratelimit-remaining"] == "0"
    limited = answers[-1]
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # And Bob's key has its own minute
    assert api.as_(bob, "GET", "/v1/me").status_code == 200


def test_bodies_are_bounded_and_malformed_ones_are_422(api: ApiClient) -> None:
    ann = api.subscriber("ann@example.com")
    huge = api.as_(ann, "POST", "/v1/channels", content=b"{" + b" " * 70_000 + b"}",
                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"
    broken = api.as_(ann, "POST", "/v1/channels", content=b"{not json",
                     headers={"Content-Type": "application/json"})  # fmt: skip
    assert (
        broken.status_code == 422
        and broken.json()["error"]["message"] == "the body is not valid JSON"
    )
    assert api.as_(ann, "GET", "/v1/nowhere").status_code == 404


def test_metrics_count_requests_by_route_template_and_never_show_a_key(
    api: ApiClient, api_process: ApiProcess
) -> None:
    # Given requests on an object route, and refused keys
    ann = api.subscriber("ann@example.com")
    api.as_(ann, "GET", "/v1/alerts/31337")
    api.http.get("/v1/me", headers={"Authorization": f"Bearer {ann.key}x"})

    # When /metrics is read
    text = httpx.get(f"{api_process.url}/metrics").text

    # Then the route is its template, failures are counted by reason, no id or key shows
    assert 'route="/v1/alerts/{alert_id}",status="404"' in text
    assert 'hyperwatch_api_auth_failures_total{reason="invalid"}' in text
    assert "31337" not in text and ann.key not in text and ann.key[3:15] not in text
    assert ADMIN_KEY not in text
    assert httpx.get(f"{api_process.url}/healthz").json() == {"status": "ok"}


def test_time_filters_and_status_select_notifications(
    api: ApiClient, pg_database: Database
) -> None:
    # Given three of Ann's notifications an hour apart, one failed
    ann = api.subscriber("ann@example.com")
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with pg_database.session() as session:
        for i, status in enumerate(("sent", "failed", "sent")):
            session.add(Notification(
                user_id=ann.user_id, channel_kind="redis", status=status, payload={"message": f"n{i}"},
                idempotency_key=f"k{i}", created_at=base + dt.timedelta(hours=i)))  # fmt: skip
    ms = int(base.timestamp() * 1000)

    # When they are read by status, by time and a page at a time
    failed = api.as_(ann, "GET", "/v1/notifications", params={"status": "failed"}).json()["items"]
    window = api.as_(ann, "GET", "/v1/notifications",
                     params={"since": ms + 1, "until": ms + 2 * 3_600_000 + 1}).json()["items"]  # fmt: skip
    first = api.as_(ann, "GET", "/v1/notifications", params={"limit": 2}).json()
    rest = api.as_(ann, "GET", "/v1/notifications",
                   params={"limit": 2, "cursor": first["next_cursor"]}).json()  # fmt: skip

    # Then each gives what it names, newest first
    assert [n["message"] for n in failed] == ["n1"]
    assert [n["message"] for n in window] == ["n2", "n1"]
    assert [n["message"] for n in first["items"] + rest["items"]] == ["n2", "n1", "n0"]
    assert rest["next_cursor"] is None
    bad = api.as_(ann, "GET", "/v1/notifications", params={"status": "lost"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"


@pytest.mark.heavy
def test_after_a_429_the_key_recovers_when_its_minute_ends(api: ApiClient) -> None:
    # Given a free key that used up its minute
    ann = api.subscriber("ann@example.com", "free")
    for _ in range(FREE_REQUESTS_PER_MINUTE):
        api.as_(ann, "GET", "/v1/me")
    limited = api.as_(ann, "GET", "/v1/me")
    assert limited.status_code == 429

    # When the client waits as told
    import time

    time.sleep(int(limited.headers["retry-after"]) + 0.5)

    # Then the key answers again, with a fresh minute
    again = api.as_(ann, "GET", "/v1/me")
    assert again.status_code == 200
    assert int(again.headers["x-ratelimit-remaining"]) == FREE_REQUESTS_PER_MINUTE - 1

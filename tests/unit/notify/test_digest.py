"""A digest's payload, pure: every member whole, the text cut to the service's limit with
the rest counted (never silently), a key unique per digest."""

from __future__ import annotations

from domain.notify.digest import Member, build, digest_key, is_digest

T = 1_760_131_200_000


def _members(n: int) -> list[Member]:
    return [
        Member(
            100 + i, f"key-{i}", {"alert_id": i, "message": f"BTC mid crossed level {i:04d}"}, T + i
        )
        for i in range(n)
    ]


def test_a_digest_keeps_every_member_and_lists_them_for_humans() -> None:
    doc = build(7, "webhook", _members(3), T + 30_000)
    assert is_digest(doc) and doc["count"] == 3 and doc["first_event_time"] == T
    assert [i["notification_id"] for i in doc["items"]] == [100, 101, 102]
    assert [i["idempotency_key"] for i in doc["items"]] == ["key-0", "key-1", "key-2"]
    assert doc["message"].splitlines() == [
        "3 notifications since 2025-10-10T21:20:00+00:00:",
        "• BTC mid crossed level 0000",
        "• BTC mid crossed level 0001",
        "• BTC mid crossed level 0002",
    ]
    assert digest_key(5, _members(3)) == "digest:5:100"


def test_a_long_digest_is_cut_to_the_service_limit_and_says_how_many_more() -> None:
    doc = build(7, "discord", _members(500), T)
    text = doc["message"]
    assert len(text) <= 2_000 and len(doc["items"]) == 500
    shown = text.count("\n• ")
    assert text.endswith(f"… and {500 - shown} more (hyperwatch notifications list)")
    assert len(build(7, "slack", _members(500), T)["message"].splitlines()) == 501

"""``/v1/channels``: where the caller's notifications go. Secrets are write-only: a
listing says whether one is set and masks the credential parts of URLs; a signing secret
the API generates is returned once, in the creation's answer. Another user's channel is 404.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from domain.alerts.manage import create_channel, owned_channel, remove_channel, target_masked
from domain.notify.channels import DeliveryContext
from domain.notify.test_send import delivered, send_test
from models.repositories import ChannelRepository
from models.user import User
from workers.api.auth import Caller, subscriber
from workers.api.errors import OBJECT_RESPONSES
from workers.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode, page_of
from workers.api.schemas import ChannelCreated, ChannelIn, ChannelOut, TestSendOut
from workers.api.services import Services, services_of

router = APIRouter(prefix="/v1/channels", tags=["channels"], responses=OBJECT_RESPONSES)
Svc = Annotated[Services, Depends(services_of)]
Me = Annotated[Caller, Depends(subscriber)]


@router.post("", status_code=201)
def add(body: ChannelIn, me: Me, services: Svc) -> ChannelCreated:
    """Add a channel; URLs must pass the SSRF guard (private and loopback addresses are
    refused unless WEBHOOK_ALLOWLIST permits them)."""
    generated = body.kind == "webhook" and not body.secret
    secret = secrets.token_urlsafe(32) if generated else body.secret
    with services.unit_of_work() as session, target_masked(body.kind, body.target):
        user = session.get(User, me.user_id)
        assert user is not None  # authenticated in this request
        channel = create_channel(
            session, services.settings, user, body.kind, body.target, secret, body.name
        )
        shown = ChannelOut.of(channel)
    return ChannelCreated(**shown.model_dump(), signing_secret=secret if generated else None)


@router.get("")
def list_channels(
    me: Me,
    services: Svc,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[ChannelOut]:
    with services.unit_of_work() as session:
        rows = ChannelRepository(session).page(
            {"user_id": me.user_id}, after=decode(cursor), limit=limit + 1
        )
        return page_of(rows, limit, ChannelOut.of)  # type: ignore[arg-type]


@router.get("/{channel_id}")
def get(channel_id: int, me: Me, services: Svc) -> ChannelOut:
    with services.unit_of_work() as session:
        return ChannelOut.of(owned_channel(session, channel_id, me.user_id))


@router.post("/{channel_id}/test")
def test_send(channel_id: int, me: Me, services: Svc) -> TestSendOut:
    """Send a test message through the channel now (one attempt, nothing stored)."""
    with services.unit_of_work() as session:
        channel = owned_channel(session, channel_id, me.user_id)
        session.expunge(channel)  # read its (decrypted) fields after the transaction
    context = DeliveryContext(
        settings=services.settings, http=services.http, redis=services.redis, clock=services.clock
    )
    attempt = send_test(channel, context)
    return TestSendOut(delivered=delivered(attempt), detail=attempt.description)


@router.delete("/{channel_id}", status_code=204)
def delete(channel_id: int, me: Me, services: Svc) -> None:
    """Remove a channel no active alert uses (409 names the alerts that do)."""
    with services.unit_of_work() as session:
        remove_channel(session, me.user_id, channel_id)

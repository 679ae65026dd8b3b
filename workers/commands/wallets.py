"""``hyperwatch wallets``: the wallets a subscriber follows (liquidation-distance alerts
need one). Tracking an address twice is a no-op; the tier's wallet quota applies."""

from __future__ import annotations

import click

from domain.alerts.manage import track_wallet, untrack_wallet
from models.repositories import TrackedWalletRepository
from workers.commands.users import announce_changes, find_user, redis_client, table, unit_of_work
from workers.context import current_settings


@click.group()
def wallets() -> None:
    """Tracked wallets."""


@wallets.command("track")
@click.option("--user", "user_ref", required=True, help="Email or id.")
@click.argument("address")
@click.option("--label", default="", help="A label for listings.")
def track(user_ref: str, address: str, label: str) -> None:
    """Follow a wallet's positions."""
    settings = current_settings()
    with unit_of_work() as session:
        user = find_user(session, user_ref)
        wallet, created = track_wallet(session, settings, user, address, label)
    state = "now tracks" if created else "already tracks"
    click.echo(f"{user.email} {state} {wallet.address}")


@wallets.command("untrack")
@click.option("--user", "user_ref", required=True, help="Email or id.")
@click.argument("address")
def untrack(user_ref: str, address: str) -> None:
    """Stop following a wallet; its liquidation alerts are deactivated."""
    client = redis_client()
    with unit_of_work() as session:
        user = find_user(session, user_ref)
        paused = untrack_wallet(session, user, address)
    announce_changes(client, paused)
    click.echo(f"{user.email} no longer tracks {address.strip().lower()}")
    if paused:
        click.echo(f"deactivated liquidation alert(s): {', '.join(map(str, paused))}")


@wallets.command("list")
@click.option("--user", "user_ref", default=None, help="Only this subscriber's (email or id).")
def list_wallets(user_ref: str | None) -> None:
    """Tracked wallets."""
    with unit_of_work() as session:
        filters = {"user_id": find_user(session, user_ref).id} if user_ref else None
        rows = [
            (w.id, w.user_id, w.address, w.label or "-")
            for w in TrackedWalletRepository(session).list(filters, limit=1000)
        ]
    table(rows, ("ID", "USER", "ADDRESS", "LABEL"))

"""The ``hyperwatch`` command: parse, call, exit code. Work lives in the modules it names.

Subcommands load lazily so that ``hyperwatch health`` does not import the simulator, and a
bad setting surfaces as one line and exit 2 wherever it is first read.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from settings import SettingsError
from workers.context import AppContext

# name → "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "db": "workers.commands.db:db",
    "config": "workers.commands.config:config",
    "simulate": "workers.simulator.cli:simulate",
    "ingest": "workers.ingester.cli:ingest",
    "health": "workers.commands.health:health",
    "up": "workers.supervisor:up",
    "users": "workers.commands.users:users",
    "alerts": "workers.commands.alerts:alerts",
    "wallets": "workers.commands.wallets:wallets",
    "notifications": "workers.commands.notifications:notifications",
}

EXIT_USAGE = 2


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only hide commands whose own module is absent; a missing dependency inside
            # an existing module is a real error and must surface.
            if exc.name and module_name.startswith(exc.name):
                return None
            raise
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """hyperwatch: Hyperliquid market data → Redis → Celery workers → PostgreSQL, alerts."""
    ctx.obj = AppContext()


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="hyperwatch", standalone_mode=True)
    except SettingsError as exc:
        click.echo(f"hyperwatch: {exc}", err=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()

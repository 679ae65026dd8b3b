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
from workers.context import AppContext, UsageError

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
    "channels": "workers.commands.channels:channels",
    "archive": "workers.commands.archive:archive",
    "gaps": "workers.commands.gaps:gaps",
    "replay": "workers.replay.cli:replay",
    "api": "workers.api.command:api",
    "export": "workers.commands.coldtier:export",
    "history": "workers.commands.coldtier:history",
}

EXIT_USAGE = 2


def _one_line(exc: click.UsageError) -> click.UsageError | UsageError:
    """Click's own usage errors (unknown option, missing or ill-typed argument) print four
    lines; hyperwatch's convention is one, ``hyperwatch: …``, with where to find help. A
    group run without a subcommand still prints its help."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return exc
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return UsageError(f"{exc.format_message()}{where}")


class LazyGroup(click.Group):
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from exc.__cause__

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from exc.__cause__

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

"""What a CLI command needs from the process: settings loaded once, on first use."""

from __future__ import annotations

from functools import cached_property

import click

from settings import Settings, load_settings


class AppContext:
    @cached_property
    def settings(self) -> Settings:
        return load_settings()


class UsageError(click.ClickException):
    """Bad input from the operator: one line on stderr and exit 2, nothing written."""

    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"hyperwatch: {one_line(self.format_message())}", err=True)


def one_line(message: str) -> str:
    """``message`` on one line: control characters the input may have carried into it (a
    newline, a carriage return, a terminal escape) are shown escaped, not acted on."""
    return "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in message)


def app_context() -> AppContext:
    ctx = click.get_current_context()
    obj = ctx.find_object(AppContext)
    if obj is None:
        obj = AppContext()
        ctx.obj = obj
    return obj


def current_settings() -> Settings:
    return app_context().settings

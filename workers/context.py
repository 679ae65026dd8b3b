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
        click.echo(f"hyperwatch: {self.format_message()}", err=True)


def app_context() -> AppContext:
    ctx = click.get_current_context()
    obj = ctx.find_object(AppContext)
    if obj is None:
        obj = AppContext()
        ctx.obj = obj
    return obj


def current_settings() -> Settings:
    return app_context().settings

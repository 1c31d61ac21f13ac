"""The project's command line: Kedro's own `run`, with output written for the person reading it.

Kedro looks up `<package>.cli` for both `kedro run` (a command here overrides Kedro's and the
plugins') and `python -m gpe_pipeline` (`find_run_command` takes this module's `run`). `run` is
Kedro's run command with the same options and behaviour; it changes only what is printed.

An expected user error (a `UserError` anywhere in the exception's cause and context chain, since
Kedro wraps node and dataset errors in its own exceptions) ends the run with its one-line message
and exit status 1. Its message already names the parameter or file to change; the traceback would
only bury it. `GPE_TRACEBACK=1` shows the traceback as well. Any other exception is a bug and keeps
its traceback.
"""

from __future__ import annotations

import os

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.cli.utils import CONTEXT_SETTINGS

from gpe_pipeline.core.errors import UserError

TRACEBACK_VARIABLE = "GPE_TRACEBACK"


def find_user_error(error: BaseException) -> UserError | None:
    """The UserError nearest to `error` among it and the exceptions it was raised from or while handling."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, UserError):
            return current
        pending += [linked for linked in (current.__cause__, current.__context__) if linked is not None]
    return None


def traceback_requested() -> bool:
    return os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0")


class RunCommand(click.Command):
    """Kedro's `run`, ending on an expected user error with its message instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as error:
            user_error = find_user_error(error)
            if user_error is None or traceback_requested():
                raise
            click.secho(f"Error: {user_error}", err=True, fg="red")
            click.echo(f"({TRACEBACK_VARIABLE}=1 shows the traceback)", err=True)
            ctx.exit(1)


@click.group(context_settings=CONTEXT_SETTINGS, name=__file__)
def cli() -> None:
    """Project commands."""


run = RunCommand(
    name="run",
    params=kedro_run.params,
    callback=kedro_run.callback,
    help=kedro_run.help,
    context_settings=kedro_run.context_settings,
)
cli.add_command(run)

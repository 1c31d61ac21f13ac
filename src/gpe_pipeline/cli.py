"""The project's command line: Kedro's own `run`, with output written for the person reading it.

Kedro looks up `<package>.cli` for both `kedro run` (a command here overrides Kedro's and the
plugins') and `python -m gpe_pipeline` (`find_run_command` takes this module's `run`). `run` is
Kedro's run command with the same options and behaviour; it changes only what is printed:

- An expected user error (a `UserError` anywhere in the exception's cause and context chain, since
  Kedro wraps node and dataset errors in its own exceptions) ends the run with its one-line message
  and exit status 1. Its message already names the parameter or file to change; the traceback would
  only bury it. `GPE_TRACEBACK=1` shows the traceback as well. Any other exception is a bug and keeps
  its traceback.
- Off a terminal (CI, nohup, output piped to a file) log records go through conf/logging.yml's
  plain `console` handler instead of `rich`, which wraps every record at 80 columns there; tracebacks
  are Python's plain ones.
"""

from __future__ import annotations

import copy
import os
import sys

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.cli.utils import CONTEXT_SETTINGS
from kedro.framework.project import LOGGING, configure_logging

from gpe_pipeline.core.errors import UserError
from gpe_pipeline.plan_command import PLAN_OPTIONS, show_plan

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
    """Whether GPE_TRACEBACK asks for the traceback of a user error (any value but empty or 0)."""
    return os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0")


def log_plain_lines_off_terminal() -> None:
    """Swap the `rich` console handler for the plain `console` one when stdout is not a terminal.

    The choice is made here because Kedro accepts logging classes only from `logging` and
    `kedro.logging`, so conf/logging.yml cannot name a handler that decides for itself. A logging
    configuration without those two handlers (KEDRO_LOGGING_CONFIG) is left as it is.
    """
    config = copy.deepcopy(dict(LOGGING))
    root_handlers = config.get("root", {}).get("handlers", [])
    if sys.stdout.isatty() or "rich" not in root_handlers or "console" not in config.get("handlers", {}):
        return
    config["root"]["handlers"] = ["console" if handler == "rich" else handler for handler in root_handlers]
    configure_logging(config)
    sys.excepthook = sys.__excepthook__  # kedro's RichHandler installs rich's boxed tracebacks


class RunCommand(click.Command):
    """Kedro's `run`, ending on an expected user error with its message instead of a traceback."""

    def invoke(self, ctx: click.Context):
        log_plain_lines_off_terminal()
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
# `kedro plan`: what `kedro run` with the same options would train, and for how long at most (gpe_pipeline.plan_command).
cli.add_command(RunCommand(name="plan", params=PLAN_OPTIONS, callback=show_plan, help=show_plan.__doc__))

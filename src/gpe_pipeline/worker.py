"""`python -m gpe_pipeline worker`: what every machine but the head runs when training sections set `nodes` > 1.

It joins each training stage the head machine's `kedro run` announces at `--rendezvous HOST:PORT`
(core.distributed.serve_stages) and exits when that run ends. Nothing here imports Kedro: the worker
writes no file, and its training processes (which re-import this module) do not pick up a project's
logging configuration (conf/logging.yml's info.log) when the worker runs in the project's folder.
"""

from __future__ import annotations

import logging
import sys

import click

from gpe_pipeline.core.distributed import LOG_FORMAT, serve_stages
from gpe_pipeline.core.errors import UserError


@click.command(name="worker", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--rendezvous", required=True, help="HOST:PORT of the head machine: its training sections' rendezvous.")
@click.option("--wait", default=600, show_default=True, type=click.IntRange(min=1), help="Seconds to wait for the head.")
@click.pass_context
def worker(ctx: click.Context, rendezvous: str, wait: int) -> None:
    """Train on this machine for the head machine's `kedro run` (training.nodes > 1), stage after stage, until it ends.

    The head tells this machine each stage's settings (processes per machine, restarts, timeout) and sends
    the model and data; the exit status is 0 when the head's run ended and every stage joined here finished.
    """
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout)
    try:
        status = serve_stages(rendezvous, wait)
    except (UserError, ValueError) as error:
        click.secho(f"Error: {error}", err=True, fg="red")
        ctx.exit(1)
    ctx.exit(status)

"""``idp worker``: deliver outbox messages (email, webhooks)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver the messages due now, then exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds to sleep when idle.")
@click.option("--batch", default=20, show_default=True, help="Messages claimed per round.")
@with_appcontext
def worker_command(once: bool, interval: float, batch: int) -> None:
    """Deliver outbox messages; several workers may run at once."""
    from idp.outbox.worker import run_forever, run_once

    if once:
        counts = run_once(batch)
        click.echo(", ".join(f"{n} {status}" for status, n in counts.items()))
        return
    try:
        run_forever(interval, batch)
    except KeyboardInterrupt:
        click.echo("stopped")

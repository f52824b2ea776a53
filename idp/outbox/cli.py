"""``idp worker``: deliver outbox messages (email, webhooks)."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from idp.extensions import db
from idp.outbox.models import OUTBOX_STATUSES, OutboxMessage
from idp.outbox.smtp import header_text


@click.command("worker")
@click.option(
    "--once",
    is_flag=True,
    help="Deliver one batch of due messages (at most --batch), then exit.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="Seconds to sleep when idle.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Messages claimed per round.",
)
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


@click.group("outbox")
def outbox_group() -> None:
    """Read the outbox (messages stay there when no SMTP relay is configured)."""


@outbox_group.command("list")
@click.option("--status", type=click.Choice(OUTBOX_STATUSES), help="Only messages in this status.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many, newest first.",
)
@with_appcontext
def outbox_list(status: str | None, limit: int) -> None:
    """List messages: id, status, attempts, recipient and subject."""
    query = sa.select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == status)
    for message in db.session.scalars(query):
        click.echo(
            f"{message.id}  {message.status:<7} {message.attempts:>2}  "
            f"{message.recipient}  {header_text(message.subject)}"
        )


@outbox_group.command("show")
@click.argument("message_id")
@with_appcontext
def outbox_show(message_id: str) -> None:
    """Print one message as it would be sent (links included: this is the operator's console).

    An email sent or given up prints the note that replaced its body.
    """
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        raise click.ClickException(f"no message {message_id}")
    subject = header_text(message.subject)
    click.echo(f"To: {message.recipient}\nSubject: {subject}\n\n{message.body}")

"""``idp audit export``: the audit log as JSON Lines."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from idp.audit.actions import KNOWN_ACTIONS
from idp.audit.query import AuditFilter, iter_events
from idp.audit.schemas import AuditEventOut


@click.group("audit")
def audit_group() -> None:
    """Read the append-only audit log."""


@audit_group.command("export")
@click.option("--actor", help="Only events of this actor id.")
@click.option("--target", help="Only events about this target id.")
@click.option(
    "--action",
    type=click.Choice(KNOWN_ACTIONS),
    metavar="NAME",
    help="Only events with this action, e.g. account.email_reassigned.",
)
@click.option("--since", type=click.DateTime(), help="From this UTC time (inclusive).")
@click.option("--until", type=click.DateTime(), help="Up to this UTC time (exclusive).")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-")
@with_appcontext
def export_command(actor, target, action, since, until, output) -> None:
    """Write matching events, oldest first, one JSON object per line."""
    schema = AuditEventOut()
    where = AuditFilter(actor=actor, target=target, action=action, since=since, until=until)
    count = 0
    for event in iter_events(where):
        output.write(json.dumps(schema.dump(event), separators=(",", ":")) + "\n")
        count += 1
    click.echo(f"exported {count} events", err=True)

"""``idp import-accounts``: the legacy account import from the command line."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from idp.support.importer import (
    DEFAULT_BATCH_SIZE,
    IMPORT_HUBS,
    ImportStopped,
    import_accounts,
)


@click.command("import-accounts")
@click.option("--hub", type=click.Choice(IMPORT_HUBS), required=True, help="The hub of every line.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Lines committed together; a stopped run leaves only whole batches.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.argument("file", type=click.File("rb"))
@with_appcontext
def import_accounts_command(hub: str, batch_size: int, as_json: bool, file) -> None:
    """Import legacy accounts from FILE (JSON Lines); running it again changes nothing."""
    try:
        report = import_accounts(hub, file, batch_size=batch_size)
    except ImportStopped as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    counts = report.summary()
    click.echo(
        f"{counts['lines']} lines: {counts['imported']} imported, {counts['joined']} joined, "
        f"{counts['conflict']} conflicts, {counts['unchanged']} unchanged, "
        f"{counts['rejected']} rejected"
    )
    for line in report.lines:
        if line.outcome in {"conflict", "rejected", "joined"}:
            subject = f" {line.email}" if line.email else ""
            click.echo(f"line {line.line}: {line.outcome}{subject}: {line.detail}")

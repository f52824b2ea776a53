"""``idp import-accounts`` (the legacy account import) and ``idp support`` (staff accounts)."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from idp.operator import operator_actor, refusals
from idp.support.importer import (
    DEFAULT_BATCH_SIZE,
    IMPORT_HUBS,
    ImportStopped,
    import_accounts,
)
from idp.support.staff import create_staff
from policies.roles import ROLES_BY_HUB


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


@click.group("support")
def support_group() -> None:
    """Manage the support organization's staff accounts."""


@support_group.command("create-staff")
@click.option("--email", required=True, help="The person's address; it gets the set-password link.")
@click.option("--name", required=True, help="The person's name.")
@click.option("--role", type=click.Choice(ROLES_BY_HUB["support"]), required=True)
@with_appcontext
def create_staff_command(email: str, name: str, role: str) -> None:
    """Create a support account with no password and email it a link to choose one."""
    with refusals():
        user = create_staff(email, name, role, actor=operator_actor("support create-staff"))
    click.echo(
        f"created {user.id} ({role}); a link to choose a password was queued to {user.email}"
    )

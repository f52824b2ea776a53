"""The ``idp`` command: Flask's commands (``db``, ``routes``, ...) plus ours."""

from __future__ import annotations

import json
import re

import click
from flask.cli import FlaskGroup, NoAppException, ScriptInfo, with_appcontext
from flask_migrate.cli import db as db_commands
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from idp import create_app
from idp.config import ConfigurationError
from idp.janitor import BATCH_SIZE, purge
from idp.login.end_all import BATCH_SIZE as END_ALL_BATCH_SIZE
from idp.outbox.cli import outbox_group, worker_command
from policies.roles import HUBS


class SettingRefused(NoAppException):
    """A setting the service cannot use: one line naming it, status 2, and no usage,
    since the command line was right."""

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=True)


def _app_or_usage_error():
    """The application, or the refused setting as one line instead of a traceback."""
    try:
        return create_app()
    except ConfigurationError as exc:
        raise SettingRefused(str(exc)) from None


DATABASE_UNREACHABLE = 3

# What psycopg puts before the reason: the host and port are named once, by us.
_SERVER_PREFIX = re.compile(r"^(connection failed: )?(connection to server at .*? failed: )?")


class DatabaseUnreachable(click.ClickException):
    """The database cannot be reached: one line naming it, status 3 (a retry may work)."""

    exit_code = DATABASE_UNREACHABLE


def _where(uri: str) -> str:
    """``host:port/database`` of a server URL, the file of SQLite; never the password."""
    url = make_url(uri)
    if url.get_backend_name() == "sqlite":
        return url.database or "memory"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def _reason(exc: DBAPIError, uri: str) -> str:
    lines = str(exc.orig).strip().splitlines() or ["no reason given"]
    reason = _SERVER_PREFIX.sub("", lines[0]).removeprefix("FATAL:").strip()
    password = make_url(uri).password
    return reason.replace(password, "***") if password else reason


def _connection_failed(exc: DBAPIError) -> bool:
    """The connection could not be made (no statement was sent), or was lost.

    A refused commit (a constraint checked at commit) has no statement either,
    but is no failure to connect.
    """
    lost = exc.statement is None or exc.connection_invalidated
    return lost and isinstance(exc, OperationalError | InterfaceError)


class IdpGroup(FlaskGroup):
    """Flask's command group, where a database that cannot be reached is one line.

    Every event a command records names the operating-system user who ran it.
    """

    def invoke(self, ctx: click.Context):
        from idp.audit.service import run_by
        from idp.operator import os_user

        try:
            with run_by(os_user()):
                return super().invoke(ctx)
        except DBAPIError as exc:
            if not _connection_failed(exc):
                raise
            uri = ctx.ensure_object(ScriptInfo).load_app().config["SQLALCHEMY_DATABASE_URI"]
            raise DatabaseUnreachable(
                f"cannot connect to the database at {_where(uri)}: {_reason(exc, uri)}"
            ) from None


@click.group(cls=IdpGroup, create_app=_app_or_usage_error, add_version_option=False)
def main() -> None:
    """Operate the idp identity provider."""


# Flask-Migrate adds `db` to the application's commands, which exist only once the
# application could be built: named here, `idp db upgrade` with a refused setting
# names the setting instead of "No such command".
main.add_command(db_commands, "db")
main.add_command(worker_command)
main.add_command(outbox_group)


def _batch_option(default: int, help_text: str):
    """``--batch``: how much one transaction of a long command writes."""
    return click.option(
        "--batch", default=default, show_default=True, type=click.IntRange(min=1), help=help_text
    )


@main.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print the demo data as JSON.")
@with_appcontext
def demo_command(as_json: bool) -> None:
    """Load the demo data (idempotent) and print it; refused with IDP_ENV=production."""
    from flask import current_app

    from idp.demo import load_demo

    if current_app.config["IDP_ENV"] == "production":
        # Known passwords and client secrets would open every demo account and client.
        raise click.ClickException(
            "the demo writes known passwords and client secrets: never with IDP_ENV=production"
        )
    data = load_demo()
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        from idp.demo import describe

        click.echo(describe(data))


@main.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@_batch_option(BATCH_SIZE, "Rows deleted per transaction.")
@with_appcontext
def purge_command(dry_run: bool, batch: int) -> None:
    """Delete codes, token families, login sessions, failed-login counters, emailed
    links (sign-up, address verification, password reset) and unfinished two-step set-ups
    past use.

    Each row is kept IDP_PURGE_AFTER seconds after it stopped counting; the worker runs this
    hourly too.
    """
    verb = "would delete" if dry_run else "deleted"
    for table, count in purge(batch=batch, dry_run=dry_run).items():
        click.echo(f"{verb} {count} {table}")


@main.group("keys")
def keys_group() -> None:
    """Manage token signing keys."""


@keys_group.command("rotate")
@with_appcontext
def keys_rotate() -> None:
    """Publish a new key of each algorithm now; each signs once relying parties can have seen it."""
    from idp.keys.operations import rotate
    from idp.operator import operator_actor

    for row in rotate(operator_actor("keys rotate")):
        click.echo(_published_key(row))


def _published_key(row) -> str:
    """The operator's line about a new signing key: its kid, algorithm and when it signs."""
    since = f"{row.activates_at.isoformat()}Z"
    if row.activates_at > row.created_at:
        return f"published {row.kid} ({row.algorithm}); it signs from {since}"
    first = ", its first key" if row.first_of else ""
    return f"published {row.kid} ({row.algorithm}{first}); it signs from now ({since})"


@keys_group.command("revoke")
@click.argument("kid")
@click.option("--ticket", required=True, help="The incident or ticket this answers.")
@click.option("--reason", required=True, help="Why the key is withdrawn.")
@with_appcontext
def keys_revoke(kid: str, ticket: str, reason: str) -> None:
    """Withdraw KID at once: it stops signing and every token it signed stops verifying.

    If KID was the active key of its algorithm, a new key of that algorithm signs from now.
    """
    from idp.keys.operations import revoke
    from idp.operator import operator_actor, refusals, ticket_and_reason

    with refusals():
        ticket, reason = ticket_and_reason(ticket, reason)
        row, replacement = revoke(
            kid, ticket=ticket, reason=reason, actor=operator_actor("keys revoke")
        )
    click.echo(f"revoked {row.kid} ({row.algorithm}); no token it signed verifies any longer")
    if replacement is not None:
        click.echo(_published_key(replacement))


@keys_group.command("list")
@with_appcontext
def keys_list() -> None:
    """List signing keys, when each starts signing, and when any was revoked."""
    from idp.extensions import db
    from idp.keys.models import SigningKey

    for row in db.session.scalars(db.select(SigningKey).order_by(SigningKey.activates_at)):
        revoked = f"  revoked {row.revoked_at.isoformat()}Z" if row.revoked_at else ""
        click.echo(
            f"{row.kid}  {row.algorithm}  activates {row.activates_at.isoformat()}Z{revoked}"
        )


@main.group("sessions")
def sessions_group() -> None:
    """End people's sessions."""


@sessions_group.command("end-all")
@click.option("--ticket", required=True, help="The incident or ticket this answers.")
@click.option("--reason", required=True, help="Why everyone is signed out.")
@click.option(
    "--hub",
    type=click.Choice(HUBS),
    help="Only the people of this hub (every hub when not given).",
)
@_batch_option(END_ALL_BATCH_SIZE, "Accounts per transaction.")
@with_appcontext
def sessions_end_all(ticket: str, reason: str, hub: str | None, batch: int) -> None:
    """Sign every person out: end each browser login, revoke each token family issued to one.

    Every instance refuses them from its next request; typing the password again signs
    in as before. Machine tokens of platform and partner services keep working.
    """
    from idp.login.end_all import end_all_sessions
    from idp.operator import operator_actor, refusals, ticket_and_reason

    with refusals():
        ticket, reason = ticket_and_reason(ticket, reason)
    ended = end_all_sessions(
        hub=hub,
        ticket=ticket,
        reason=reason,
        actor=operator_actor("sessions end-all"),
        batch=batch,
    )
    click.echo(
        f"ended {ended.logins} browser logins; revoked {ended.token_families} token families"
    )


from idp.audit.cli import audit_group  # noqa: E402
from idp.oauth.cli import clients_group  # noqa: E402
from idp.support.cli import import_accounts_command, support_group  # noqa: E402

main.add_command(import_accounts_command)
main.add_command(audit_group)
main.add_command(clients_group)
main.add_command(support_group)

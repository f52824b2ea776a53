"""``idp clients``: the operator registers the hub frontends and the platform's services."""

from __future__ import annotations

import re

import click
from flask.cli import with_appcontext

from idp.keys.models import SIGNING_ALGORITHMS
from idp.keys.service import ALGORITHM
from idp.oauth import clients, operator_clients
from idp.oauth.models import CLIENT_HUBS
from idp.operator import kept_for_output, operator_actor, refusals
from idp.timeutil import isoformat

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class GracePeriod(click.ParamType):
    """0 to 7 days: seconds, or a whole number with ``s``, ``m``, ``h`` or ``d``."""

    name = "duration"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        found = re.fullmatch(r"(\d{1,7})([smhd]?)", value.strip())
        seconds = int(found[1]) * _UNITS[found[2]] if found else -1
        if not 0 <= seconds <= clients.MAX_PREVIOUS_SECRET_SECONDS:
            self.fail(
                f"{value!r} is not a duration of 0 to 7 days: give seconds, or a whole "
                "number with s, m, h or d (e.g. 3600, 90m, 24h, 7d).",
                param,
                ctx,
            )
        return seconds


@click.group("clients")
def clients_group() -> None:
    """Register the OAuth clients of the hub frontends and of the platform's services."""


def _echo_secret(client_id: str, secret: str) -> None:
    click.echo(f"client_id: {client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown this once and cannot be read again; store it now.")


@clients_group.command("set-hub")
@click.option("--hub", type=click.Choice(CLIENT_HUBS), required=True, help="The hub frontend.")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    help="Where a login returns (exact match; repeat for several). Replaces the registered "
    "ones; by default they stay. A new client needs one.",
)
@click.option(
    "--post-logout-redirect-uri",
    "post_logout_redirect_uris",
    multiple=True,
    help="Where a logout may return (repeat for several). Replaces the registered ones; "
    "by default they stay.",
)
@click.option(
    "--clear-post-logout-redirect-uris",
    "clear_post_logout",
    is_flag=True,
    help="Register no post-logout redirect URI any longer.",
)
@click.option(
    "--id-token-alg",
    type=click.Choice(SIGNING_ALGORITHMS),
    help=f"How its ID tokens are signed; by default as registered, {ALGORITHM} for a new client.",
)
@with_appcontext
def set_hub(hub, redirect_uris, post_logout_redirect_uris, clear_post_logout, id_token_alg) -> None:
    """Create or update the public client of a hub frontend; what is not given stays."""
    if clear_post_logout and post_logout_redirect_uris:
        raise click.UsageError(
            "--post-logout-redirect-uri and --clear-post-logout-redirect-uris cannot be combined."
        )
    with refusals():
        client, outcome = operator_clients.set_hub_client(
            hub,
            list(redirect_uris) or None,
            [] if clear_post_logout else list(post_logout_redirect_uris) or None,
            id_token_alg,
            actor=operator_actor("clients set-hub"),
        )
    click.echo(f"{outcome} {client.client_id} ({client.name})")
    _echo_details(client)


def _echo_details(client) -> None:
    for uri in client.redirect_uris or []:
        click.echo(f"  redirect_uri: {uri}")
    for uri in client.post_logout_redirect_uris or []:
        click.echo(f"  post_logout_redirect_uri: {uri}")
    if client.kind == "hub":
        click.echo(f"  id_token_signed_response_alg: {client.id_token_signed_response_alg}")
    else:
        click.echo(f"  organization: {client.organization_id}")
        click.echo(f"  scope: {client.scope}")


@clients_group.command("list")
@with_appcontext
def list_clients() -> None:
    """List the clients that are not deleted (never a secret)."""
    for client in operator_clients.list_clients():
        click.echo(f"{client.client_id}  {client.kind}  {client.name}")
        _echo_details(client)
        if client.previous_secret_valid_until is not None:
            _echo_previous_secret(client)


@clients_group.command("create-platform")
@click.option("--name", required=True, help="What the service is, e.g. Provisioning service.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="A scope it may ask for (repeat for several), e.g. channels:write.",
)
@click.option(
    "--organization",
    help="Its support organization's id; by default the support organization (made if none).",
)
@with_appcontext
def create_platform(name, scopes, organization) -> None:
    """Create a platform service's confidential client and print its secret once."""
    with refusals(), kept_for_output():
        client, secret = operator_clients.create_platform_client(
            name,
            [s for value in scopes for s in value.split()],
            organization,
            actor=operator_actor("clients create-platform"),
        )
    click.echo(f"created {client.client_id} ({client.name})")
    _echo_details(client)
    _echo_secret(client.client_id, secret)


@clients_group.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--grace",
    type=GracePeriod(),
    default="0",
    show_default=True,
    help="How long the old secret keeps working beside the new one (up to 7d), e.g. 24h; "
    "0 stops it at once. A previous secret still in its grace period is replaced.",
)
@with_appcontext
def rotate_secret(client_id: str, grace: int) -> None:
    """Give CLIENT_ID a new secret, printed once; the old one stops (after --grace)."""
    with refusals(), kept_for_output():
        client, secret = operator_clients.rotate_client_secret(
            client_id, actor=operator_actor("clients rotate-secret"), grace=grace
        )
    click.echo(f"rotated the secret of {client.client_id} ({client.name})")
    _echo_previous_secret(client)
    _echo_secret(client.client_id, secret)


def _echo_previous_secret(client) -> None:
    until = client.previous_secret_valid_until
    if until is None:
        click.echo("  the previous secret no longer works")
    else:
        click.echo(f"  the previous secret works until {isoformat(until)}")


@clients_group.command("expire-previous-secret")
@click.argument("client_id")
@with_appcontext
def expire_previous_secret(client_id: str) -> None:
    """End CLIENT_ID's previous secret's grace period: only the current secret works."""
    with refusals():
        client, ended = operator_clients.expire_previous_secret(
            client_id, actor=operator_actor("clients expire-previous-secret")
        )
    if ended:
        click.echo(f"the previous secret of {client.client_id} ({client.name}) no longer works")
    else:
        click.echo(f"{client.client_id} ({client.name}) has no previous secret that works")


@clients_group.command("delete")
@click.argument("client_id")
@with_appcontext
def delete(client_id: str) -> None:
    """Delete CLIENT_ID; every token it holds stops working on every instance."""
    with refusals():
        client = operator_clients.delete_client(client_id, actor=operator_actor("clients delete"))
    click.echo(f"deleted {client.client_id} ({client.name}); its tokens are revoked")

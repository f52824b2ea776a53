"""What the operator's ``idp clients`` commands do: OAuth clients of any kind, by client id.

The hub frontends' clients are set from the command line, platform services'
clients are made there, and any client's secret is rotated, its previous
secret ended or the client deleted there, with the command named as the
actor in the audit log. A partner manages its own clients through the API
(``idp.oauth.clients``), under the same rules for secrets and deletion.
"""

from __future__ import annotations

from idp.accounts.service import checked_name
from idp.audit.service import record_event
from idp.errors import InvalidInput, NotFound
from idp.extensions import db
from idp.keys.service import ALGORITHM, add_first_key
from idp.oauth.clients import (
    InvalidRedirectUri,
    ScopeNotAllowed,
    check_id_token_alg,
    delete_and_revoke,
    end_previous_secret,
    record_client_event,
    register_hub_client,
    register_platform_client,
    rotate_secret,
)
from idp.oauth.models import HUB_CLIENT_IDS, OAuthClient
from idp.orgs.models import Organization
from idp.orgs.service import support_organization
from policies.roles import MACHINE_SCOPES

HUB_SETTINGS = ("redirect_uris", "post_logout_redirect_uris", "id_token_signed_response_alg")


def _hub_settings(client: OAuthClient) -> dict:
    return {name: getattr(client, name) for name in HUB_SETTINGS}


def set_hub_client(
    hub: str,
    redirect_uris: list[str] | None,
    post_logout_redirect_uris: list[str] | None,
    id_token_signed_response_alg: str | None,
    *,
    actor: dict,
) -> tuple[OAuthClient, str]:
    """Create or update a hub frontend's client and commit; return it and what happened.

    What happened is ``created``, ``updated`` or ``unchanged`` (nothing written,
    nothing recorded). ``actor`` holds the audit ``actor_type``/``actor_id``.
    A setting given as None stays as a live client has it: re-running the
    command to change one setting changes no other (an RP's logout keeps its
    return address, its relying party keeps the ID-token algorithm it accepts).
    A new client, or a deleted one brought back, needs redirect URIs, has no
    post-logout URIs and signs with ES256 unless told.
    """
    existing = db.session.get(OAuthClient, HUB_CLIENT_IDS[hub])
    live = existing is not None and existing.deleted_at is None
    before = _hub_settings(existing) if live else None
    if redirect_uris is None:
        redirect_uris = existing.redirect_uris if live else []
    if not redirect_uris:
        raise InvalidRedirectUri(
            "A hub client needs at least one redirect URI.", fields={"redirect_uris": []}
        )
    if post_logout_redirect_uris is None:
        post_logout_redirect_uris = existing.post_logout_redirect_uris if live else []
    if id_token_signed_response_alg is None:
        id_token_signed_response_alg = existing.id_token_signed_response_alg if live else ALGORITHM
    # The algorithm's first key, made here rather than by the registration, goes on the record.
    first_key = add_first_key(check_id_token_alg(id_token_signed_response_alg))
    client = register_hub_client(
        hub, redirect_uris, post_logout_redirect_uris, id_token_signed_response_alg
    )
    after = _hub_settings(client)
    if before == after:
        db.session.rollback()
        return client, "unchanged"
    if first_key is not None:
        from idp.keys.operations import record_published

        record_published(first_key, actor)
    record_event(
        "oauth_client.updated" if live else "oauth_client.created",
        **actor,
        target_type="oauth_client",
        target_id=client.client_id,
        before=before,
        after={"name": client.name, **after},
    )
    db.session.commit()
    return client, "updated" if live else "created"


def create_platform_client(
    name: str, scopes: list[str], organization_id: str | None, *, actor: dict
) -> tuple[OAuthClient, str]:
    """A platform service's confidential client, in the support organization; commits.

    The secret is returned this once (only its hash is stored).
    """
    name = checked_name(name, "name", "client name")
    allowed = {str(p) for p in MACHINE_SCOPES["support"]}
    if not scopes or not set(scopes) <= allowed:
        raise ScopeNotAllowed(
            f"A platform client needs one or more of: {' '.join(sorted(allowed))}.",
            fields={"scope": sorted(set(scopes) - allowed)},
        )
    if organization_id is None:
        organization = support_organization(actor)
    else:
        organization = db.session.get(Organization, organization_id)
        if organization is None or organization.kind != "support":
            raise NotFound(
                "No such support organization.", fields={"organization": [organization_id]}
            )
    client, secret = register_platform_client(
        name, organization.id, " ".join(dict.fromkeys(scopes))
    )
    record_client_event("oauth_client.created", actor, client, kind="platform", scope=client.scope)
    db.session.commit()
    return client, secret


def live_client(client_id: str, *, lock: bool = False) -> OAuthClient:
    """A client that exists and is not deleted, of any kind, or ``NotFound``.

    ``lock`` reads it ``FOR UPDATE`` until the commit.
    """
    client = db.session.get(OAuthClient, client_id, with_for_update=lock or None)
    if client is None or client.deleted_at is not None:
        raise NotFound("No such OAuth client.", fields={"client_id": [client_id]})
    return client


def list_clients() -> list[OAuthClient]:
    """Every live client, hub frontends first, then by kind and creation (never a secret)."""
    order = db.case({"hub": 0, "platform": 1}, value=OAuthClient.kind, else_=2)
    return list(
        db.session.scalars(
            db.select(OAuthClient)
            .where(OAuthClient.deleted_at.is_(None))
            .order_by(order, OAuthClient.created_at, OAuthClient.client_id)
        )
    )


def rotate_client_secret(client_id: str, *, actor: dict, grace: int = 0) -> tuple[OAuthClient, str]:
    """A new secret for a confidential client; commits.

    The old one keeps working for ``grace`` seconds (at once it stops, by default).
    """
    client = live_client(client_id, lock=True)
    if client.client_secret_hash is None:
        raise InvalidInput(
            "A hub frontend is a public client: it has no secret.",
            fields={"client_id": [client_id]},
        )
    return client, rotate_secret(client, actor, grace)


def expire_previous_secret(client_id: str, *, actor: dict) -> tuple[OAuthClient, bool]:
    """End a client's previous secret's grace period now; commits if there was one."""
    client = live_client(client_id, lock=True)
    return client, end_previous_secret(client, actor)


def delete_client(client_id: str, *, actor: dict) -> OAuthClient:
    """Delete a client of any kind and revoke every token it holds; commits."""
    client = live_client(client_id)
    delete_and_revoke(client, actor)
    return client

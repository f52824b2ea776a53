"""Registering OAuth clients: hub frontends, the platform's services, partners' API credentials."""

from __future__ import annotations

import secrets
from datetime import timedelta

from idp.accounts.service import checked_name
from idp.audit.service import actor_fields, record_event
from idp.auth.enforce import enforce
from idp.errors import Conflict, InvalidInput, NotFound
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.keys.models import SIGNING_ALGORITHMS
from idp.keys.service import ALGORITHM, add_first_key
from idp.oauth.models import (
    HUB_CLIENT_IDS,
    OAuthClient,
    TokenFamily,
    redirect_uri_allowed,
    sha256_hex,
)
from idp.oauth.revocation import revoke_family
from idp.orgs.models import Organization
from idp.orgs.service import support_organization
from idp.timeutil import isoformat, utcnow
from policies.actor import Actor
from policies.organizations import can_act_in_org
from policies.permissions import Permission
from policies.roles import MACHINE_SCOPES

SECRET_BYTES = 32  # 256 random bits
# The longest a rotated secret keeps working beside the new one.
MAX_PREVIOUS_SECRET_SECONDS = 7 * 86400
HUB_SCOPE = "openid email profile"
MAX_CLIENTS_PER_PARTNER = 50


class InvalidRedirectUri(InvalidInput):
    """A redirect URI that is not https (or loopback http), has a fragment or a wildcard."""

    code = "invalid_redirect_uri"


class ScopeNotAllowed(InvalidInput):
    """A partner client asked for a scope partners cannot have."""

    code = "invalid_scope"


class UnsupportedIdTokenAlg(InvalidInput):
    """A client asked for ID tokens signed with an algorithm the service does not sign with."""

    code = "invalid_client_metadata"  # OpenID Connect Dynamic Client Registration 3.3


class TooManyClients(Conflict):
    """The partner already has the maximum number of clients."""

    code = "too_many_clients"


def new_secret() -> str:
    """A fresh client secret (256 bits)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def check_redirect_uris(uris: list[str]) -> list[str]:
    """Refuse anything that cannot be matched exactly and safely; keep the order, drop repeats."""
    bad = [uri for uri in uris if not redirect_uri_allowed(uri) or len(uri) > 2000]
    if bad:
        raise InvalidRedirectUri(
            "Redirect URIs must be https (http only on a loopback host), without fragment, "
            "user information or wildcard, in the characters RFC 3986 allows (an IDN host "
            "in its punycode form).",
            fields={"redirect_uris": bad},
        )
    return list(dict.fromkeys(uris))


def check_id_token_alg(alg: str) -> str:
    """Refuse an ``id_token_signed_response_alg`` the service does not sign ID tokens with."""
    if alg not in SIGNING_ALGORITHMS:
        raise UnsupportedIdTokenAlg(
            f"id_token_signed_response_alg must be one of: {', '.join(SIGNING_ALGORITHMS)}.",
            fields={"id_token_signed_response_alg": [alg]},
        )
    return alg


def register_hub_client(
    hub: str,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str] | None = None,
    id_token_signed_response_alg: str = ALGORITHM,
) -> OAuthClient:
    """Create or update the public first-party client of ``hub``; the caller commits."""
    alg = check_id_token_alg(id_token_signed_response_alg)
    client_id = HUB_CLIENT_IDS[hub]
    client = db.session.get(OAuthClient, client_id)
    if client is None:
        client = OAuthClient(client_id=client_id, kind="hub", hub=hub, created_at=utcnow())
        db.session.add(client)
    client.name = {"partner": "Partner Hub", "client": "Client Hub", "support": "Support"}[hub]
    client.redirect_uris = check_redirect_uris(redirect_uris)
    client.post_logout_redirect_uris = check_redirect_uris(post_logout_redirect_uris or [])
    client.scope = HUB_SCOPE
    client.id_token_signed_response_alg = alg
    client.deleted_at = None
    # The algorithm's first key (an RSA one) signs at once: published before this
    # client's first ID token.
    add_first_key(alg)
    return client


def register_platform_client(
    name: str, organization_id: str, scope: str, client_id: str | None = None
) -> tuple[OAuthClient, str]:
    """Create a platform service client (hub ``support``) and return it with its secret."""
    allowed = {str(p) for p in MACHINE_SCOPES["support"]}
    if not set(scope.split()) <= allowed:
        raise ScopeNotAllowed(f"A platform client may only have: {' '.join(sorted(allowed))}.")
    secret = new_secret()
    client = OAuthClient(
        client_id=client_id or new_id(PREFIXES["oauth_client"], 24),
        client_secret_hash=sha256_hex(secret),
        name=name,
        kind="platform",
        hub="support",
        organization_id=organization_id,
        redirect_uris=[],
        post_logout_redirect_uris=[],
        scope=scope,
        created_at=utcnow(),
    )
    db.session.add(client)
    return client, secret


def _manage(actor: Actor, partner_id: str) -> None:
    enforce(can_act_in_org(actor, Permission.OAUTH_CLIENTS_MANAGE, partner_id, "partner"))


def _partner_client(partner_id: str, client_id: str, *, lock: bool = False) -> OAuthClient:
    """The partner's live client; ``lock`` reads it ``FOR UPDATE`` until the commit."""
    client = db.session.get(OAuthClient, client_id, with_for_update=lock or None)
    if (
        client is None
        or client.kind != "partner"
        or client.organization_id != partner_id
        or client.deleted_at is not None
    ):
        raise NotFound("No such OAuth client.")
    return client


def _audit(
    action: str, actor: dict, client: OAuthClient, before: dict | None = None, **extra
) -> None:
    """``actor`` holds the audit ``actor_type``/``actor_id`` (``actor_fields``)."""
    record_event(
        action,
        **actor,
        target_type="oauth_client",
        target_id=client.client_id,
        organization_id=client.organization_id,
        before=before,
        after={"name": client.name, "redirect_uris": client.redirect_uris, **extra},
    )


def create_partner_client(
    actor: Actor,
    partner_id: str,
    *,
    name: str,
    redirect_uris: list[str] | None = None,
    scope: str | None = None,
) -> tuple[OAuthClient, str]:
    """A partner owner creates a confidential client; the secret is returned this once."""
    _manage(actor, partner_id)
    allowed = {str(p) for p in MACHINE_SCOPES["partner"]}
    requested = scope.split() if scope else sorted(allowed)
    if not set(requested) <= allowed:
        raise ScopeNotAllowed(
            "Unknown or forbidden scope.", fields={"scope": sorted(set(requested) - allowed)}
        )
    live = db.session.scalar(
        db.select(db.func.count())
        .select_from(OAuthClient)
        .where(OAuthClient.organization_id == partner_id, OAuthClient.deleted_at.is_(None))
    )
    if live >= MAX_CLIENTS_PER_PARTNER:
        raise TooManyClients(f"A partner may have at most {MAX_CLIENTS_PER_PARTNER} clients.")
    secret = new_secret()
    client = OAuthClient(
        client_id=new_id(PREFIXES["oauth_client"], 24),
        client_secret_hash=sha256_hex(secret),
        name=name,
        kind="partner",
        hub="partner",
        organization_id=partner_id,
        redirect_uris=check_redirect_uris(redirect_uris or []),
        post_logout_redirect_uris=[],
        scope=" ".join(requested),
        created_at=utcnow(),
    )
    db.session.add(client)
    _audit("oauth_client.created", actor_fields(actor), client, scope=client.scope)
    db.session.commit()
    return client, secret


def list_partner_clients(actor: Actor, partner_id: str) -> list[OAuthClient]:
    """The partner's live clients, newest first (never their secrets)."""
    _manage(actor, partner_id)
    return list(
        db.session.scalars(
            db.select(OAuthClient)
            .where(
                OAuthClient.organization_id == partner_id,
                OAuthClient.kind == "partner",
                OAuthClient.deleted_at.is_(None),
            )
            .order_by(OAuthClient.created_at.desc(), OAuthClient.client_id)
        )
    )


def _revoke_client_tokens(client: OAuthClient, reason: str, actor: dict) -> None:
    families = db.session.scalars(
        db.select(TokenFamily).where(
            TokenFamily.client_id == client.client_id, TokenFamily.revoked_at.is_(None)
        )
    )
    # Revoked by the service when a person deleted the client; an operator command
    # names itself.
    by = actor["actor_id"] if actor["actor_type"] == "system" else None
    for family in families:
        revoke_family(family, reason, actor_id=by, actor_type="system")


def rotate_partner_client_secret(
    actor: Actor, partner_id: str, client_id: str, previous_secret_expires_in: int = 0
) -> tuple[OAuthClient, str]:
    """Replace the secret; return the new one this once.

    The old one keeps working for ``previous_secret_expires_in`` seconds (at
    once it stops, by default).
    """
    _manage(actor, partner_id)
    client = _partner_client(partner_id, client_id, lock=True)
    return client, _rotate(client, actor_fields(actor), previous_secret_expires_in)


def _rotate(client: OAuthClient, actor: dict, grace: int) -> str:
    """A new secret; the current one becomes the previous one for ``grace`` seconds.

    Only one previous secret is kept: one still in its grace period is
    replaced. ``client`` is read ``FOR UPDATE``: of two rotations at once, the
    later keeps the earlier one's secret, not the one both replaced. The
    tokens the client holds stay valid until they expire, as they do without
    a grace period (deleting the client ends them).
    """
    if not 0 <= grace <= MAX_PREVIOUS_SECRET_SECONDS:
        raise InvalidInput(
            f"The previous secret may work for 0 to {MAX_PREVIOUS_SECRET_SECONDS} seconds.",
            fields={"previous_secret_expires_in": [str(grace)]},
        )
    secret = new_secret()
    now = utcnow()
    if grace:
        client.previous_secret_hash = client.client_secret_hash
        client.previous_secret_expires_at = now + timedelta(seconds=grace)
    else:
        client.previous_secret_hash = client.previous_secret_expires_at = None
    client.client_secret_hash = sha256_hex(secret)
    client.secret_rotated_at = now
    _audit(
        "oauth_client.secret_rotated",
        actor,
        client,
        previous_secret_expires_in=grace,
        previous_secret_expires_at=isoformat(client.previous_secret_expires_at),
    )
    db.session.commit()
    return secret


def expire_partner_client_previous_secret(actor: Actor, partner_id: str, client_id: str) -> None:
    """End the grace period of the client's previous secret now (nothing if it has none)."""
    _manage(actor, partner_id)
    _expire_previous(_partner_client(partner_id, client_id, lock=True), actor_fields(actor))


def _expire_previous(client: OAuthClient, actor: dict) -> bool:
    """Make the previous secret stop working; whether there was one that still worked."""
    until = client.previous_secret_valid_until
    if until is None:
        return False
    client.previous_secret_hash = client.previous_secret_expires_at = None
    _audit(
        "oauth_client.previous_secret_expired",
        actor,
        client,
        before={"previous_secret_expires_at": isoformat(until)},
        previous_secret_expires_at=isoformat(utcnow()),
    )
    db.session.commit()
    return True


def delete_partner_client(actor: Actor, partner_id: str, client_id: str) -> None:
    """Delete the client and revoke every token it holds."""
    _manage(actor, partner_id)
    _delete(_partner_client(partner_id, client_id), actor_fields(actor))


def _delete(client: OAuthClient, actor: dict) -> None:
    client.deleted_at = utcnow()
    _revoke_client_tokens(client, "oauth_client_deleted", actor)
    _audit("oauth_client.deleted", actor, client)
    db.session.commit()


# --------------------------------------------------------------------------- operator commands

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
    _audit("oauth_client.created", actor, client, kind="platform", scope=client.scope)
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
    return client, _rotate(client, actor, grace)


def expire_previous_secret(client_id: str, *, actor: dict) -> tuple[OAuthClient, bool]:
    """End a client's previous secret's grace period now; commits if there was one."""
    client = live_client(client_id, lock=True)
    return client, _expire_previous(client, actor)


def delete_client(client_id: str, *, actor: dict) -> OAuthClient:
    """Delete a client of any kind and revoke every token it holds; commits."""
    client = live_client(client_id)
    _delete(client, actor)
    return client

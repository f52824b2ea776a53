"""Registering OAuth clients: hub frontends, the platform's services, partners' API credentials.

A partner manages its own clients here (through the API); what the operator's
``idp clients`` commands do to clients of any kind is ``idp.oauth.operator_clients``,
with the same secret rotation and deletion.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

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
from idp.orgs.service import hold_acting_person
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


def record_client_event(
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
    _manage(hold_acting_person(actor, partner_id), partner_id)
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
    record_client_event("oauth_client.created", actor_fields(actor), client, scope=client.scope)
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
    _manage(hold_acting_person(actor, partner_id), partner_id)
    client = _partner_client(partner_id, client_id, lock=True)
    return client, rotate_secret(client, actor_fields(actor), previous_secret_expires_in)


def rotate_secret(client: OAuthClient, actor: dict, grace: int) -> str:
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
    record_client_event(
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
    end_previous_secret(_partner_client(partner_id, client_id, lock=True), actor_fields(actor))


def end_previous_secret(client: OAuthClient, actor: dict) -> bool:
    """Make the previous secret stop working; whether there was one that still worked."""
    until = client.previous_secret_valid_until
    if until is None:
        return False
    client.previous_secret_hash = client.previous_secret_expires_at = None
    record_client_event(
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
    delete_and_revoke(_partner_client(partner_id, client_id), actor_fields(actor))


def delete_and_revoke(client: OAuthClient, actor: dict) -> None:
    """Delete ``client``, revoke every token family it holds, and commit."""
    client.deleted_at = utcnow()
    _revoke_client_tokens(client, "oauth_client_deleted", actor)
    record_client_event("oauth_client.deleted", actor, client)
    db.session.commit()

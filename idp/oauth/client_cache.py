"""OAuth clients and their standing machine families, cached per process (``idp.changes``).

The token endpoint, introspection and each step of a login look their client
up, a login several times. With Redis, a process keeps an immutable snapshot
of each client it has read until any ``oauth_clients`` row changes anywhere;
a client's standing machine family (the one its client-credentials tokens
share) is kept until any token family changes. A deleted client, a rotated
secret, a previous secret's grace period ended early or a revoked machine
family is therefore seen by every instance on its next request. A grace
period that runs out changes no row: the snapshot keeps the previous
secret's expiry, and each check compares it with the clock. Without Redis,
every lookup reads the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from idp import changes
from idp.extensions import db
from idp.oauth.family_state import FAMILIES
from idp.oauth.models import ClientRules, OAuthClient, TokenFamily
from idp.timeutil import epoch_seconds

CLIENTS = changes.counter("oauth-clients", "oauth_clients", inserts=("oauth_clients",))
_clients = changes.cache("oauth-clients", CLIENTS)
_standing = changes.cache("standing-families", FAMILIES)


@dataclass(frozen=True)
class ClientSnapshot(ClientRules):
    """A read-only copy of one ``OAuthClient`` row; answers Authlib exactly as the row does."""

    client_id: str
    client_secret_hash: str | None
    name: str
    kind: str
    hub: str
    organization_id: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    scope: str
    id_token_signed_response_alg: str
    created_at: datetime
    secret_rotated_at: datetime | None
    previous_secret_hash: str | None
    previous_secret_expires_at: datetime | None
    deleted_at: datetime | None


@dataclass(frozen=True)
class StandingFamily:
    """What a client-credentials token needs of its client's live machine family."""

    id: str
    ends: float  # its expiry in seconds since the epoch, compared on every token

    def lasts(self, seconds: int) -> bool:
        """Whether it is still live ``seconds`` from now."""
        return self.ends > time.time() + seconds


def snapshot(row: OAuthClient) -> ClientSnapshot:
    """An immutable copy of ``row``."""
    return ClientSnapshot(
        client_id=row.client_id,
        client_secret_hash=row.client_secret_hash,
        name=row.name,
        kind=row.kind,
        hub=row.hub,
        organization_id=row.organization_id,
        redirect_uris=tuple(row.redirect_uris or ()),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
        scope=row.scope or "",
        id_token_signed_response_alg=row.id_token_signed_response_alg,
        created_at=row.created_at,
        secret_rotated_at=row.secret_rotated_at,
        previous_secret_hash=row.previous_secret_hash,
        previous_secret_expires_at=row.previous_secret_expires_at,
        deleted_at=row.deleted_at,
    )


def _read(client_id: str) -> ClientSnapshot | None:
    row = db.session.get(OAuthClient, client_id)
    return snapshot(row) if row is not None else None


def find_client(client_id: str) -> ClientRules | None:
    """The client ``client_id``, deleted or not (a snapshot: read it, never change it)."""
    return _clients.get(client_id, lambda: _read(client_id))


def standing_family(client_id: str, *, min_remaining: int) -> StandingFamily | None:
    """The remembered live machine family of ``client_id``, if it outlives ``min_remaining`` s."""
    known = _standing.get(client_id, lambda: None)
    return known if known is not None and known.lasts(min_remaining) else None


def remember_standing_family(client_id: str, family: TokenFamily) -> None:
    """Remember ``family`` (committed, read in this request) as the client's standing family."""
    if family.revoked_at is None:
        _standing.put(client_id, StandingFamily(family.id, epoch_seconds(family.expires_at)))

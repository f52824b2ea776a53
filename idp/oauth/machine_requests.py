"""What a service's everyday token request was found to be, kept per process (``idp.changes``).

A partner's or the platform's server asks for a client-credentials token with
the same credentials and scope over and over. The lean token path
(``idp.oauth.hot_paths``) authenticates the client, checks its grant and the
scope, and finds the client's standing family; with Redis it keeps what it
found, by the SHA-256 of the ``Authorization`` header and the scope asked for,
and the next such request only signs a token. What was found is dropped on
every instance on its next request:

* when any OAuth client changes (the client-counter): a rotated secret, an
  early end of a previous secret's grace period, a changed scope or grant, a
  deleted client;
* when any token family changes (the token-family counter): a revoked
  machine token revokes its standing family, and the next request finds or
  opens another;

and it is not used once its family is closer to its end than a token's
lifetime (by the clock, on every request). Only a request made with the
client's current secret is kept: one made with a previous secret during its
grace period is checked every time, since that grace ends by the clock.
The digest is of a secret of high entropy, and the lookup by it compares
digests, never the secret. Without Redis, nothing is kept.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from idp import changes
from idp.oauth.client_cache import CLIENTS, ClientSnapshot, StandingFamily
from idp.oauth.family_state import FAMILIES
from idp.oauth.models import sha256_hex

_requests = changes.cache("machine-token-requests", CLIENTS, FAMILIES, max_entries=10_000)


@dataclass(frozen=True)
class KnownRequest:
    """A client authenticated with its current secret, the scope it gets, and its family."""

    client: ClientSnapshot
    scope: str
    family: StandingFamily


def request_key(authorization: str, requested: str | None) -> bytes:
    """What a kept request is found by: one digest of the credentials and the scope asked for
    (32 bytes however long the scope sent)."""
    credentials = authorization.encode("utf-8", "surrogatepass")
    # The length first, so no other header and scope spell the same bytes; and no scope
    # is told apart from an empty one.
    asked = b"-" if requested is None else b"+" + requested.encode("utf-8", "surrogatepass")
    return hashlib.sha256(b"%d:" % len(credentials) + credentials + asked).digest()


def known_request(key: bytes, min_remaining: int) -> KnownRequest | None:
    """The request kept for ``key``, if its family outlives ``min_remaining`` seconds."""
    known = _requests.get(key, lambda: None)
    return known if known is not None and known.family.lasts(min_remaining) else None


def keep_request(key: bytes, client, secret: str, scope: str, family) -> None:
    """Keep what this request found, if its secret is the client's current one and its
    family one remembered as committed (``client_cache.standing_family``).

    A scope longer than all of the client's scopes together (the same ones
    repeated) is not kept: what is kept stays as small as a client's scopes.
    """
    if not isinstance(client, ClientSnapshot) or not isinstance(family, StandingFamily):
        return
    if client.client_secret_hash is None or len(scope) > len(client.scope):
        return
    if hmac.compare_digest(sha256_hex(secret), client.client_secret_hash):
        _requests.put(key, KnownRequest(client, scope, family))

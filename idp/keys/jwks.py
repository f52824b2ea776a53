"""The JWKS document (RFC 7517) as served: kept in memory by every instance (``idp.changes``).

Relying parties and gateways fetch it often. With Redis, each process keeps
the rendered document and its ETag until any ``signing_keys`` row changes
anywhere, so a key rotated or added through any instance is in every
instance's JWKS on its next request, and a warm instance reads nothing. A
retired key leaves the document at a time known when it is rendered; the
document is rendered again from then on. Without Redis it is rendered from
the database on every request.

Its counter is declared with the keys (``idp.keys.service``), which every
process the application factory builds imports (a command such as ``idp keys
rotate`` too), so each one moves it when it changes a key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from idp import changes
from idp.extensions import db
from idp.keys.models import SIGNING_ALGORITHMS, SigningKey
from idp.keys.service import ALGORITHM, SIGNING_KEYS, ensure_signing_key, max_token_lifetime
from idp.timeutil import utcnow

_documents = changes.cache("jwks", SIGNING_KEYS, max_entries=1)


@dataclass(frozen=True)
class JwksDocument:
    """The serialized JWKS, its strong ETag, and when a retired key leaves it."""

    body: bytes
    etag: str
    changes_at: datetime | None


def jwks_document() -> JwksDocument:
    """The current JWKS document, from memory while no key has changed."""
    document = _documents.get("jwks", _render)
    if document.changes_at is not None and utcnow() >= document.changes_at:
        document = _render()
        _documents.put("jwks", document)
    return document


def _render() -> JwksDocument:
    keys, changes_at = publication()
    if not any(key["alg"] == ALGORITHM for key in keys):
        # Never publish a set without the key that signs access tokens: a relying
        # party would cache it for max-age and then meet the first key's tokens.
        ensure_signing_key(ALGORITHM)
        keys, changes_at = publication()
    body = current_app.json.dumps({"keys": keys}).encode()
    return JwksDocument(body, hashlib.sha256(body).hexdigest(), changes_at)


def published_jwks() -> dict:
    """JWKS of every key that is pending, signing, or retired with tokens still alive."""
    return {"keys": publication()[0]}


def publication() -> tuple[list[dict], datetime | None]:
    """The public keys the JWKS lists now, and when one next leaves it (None: not by time).

    Read from the stored public halves: publishing decrypts nothing. A key is
    listed from its creation until its algorithm's next key has signed for
    longer than any token lives; only that moment changes the list without a write.
    A revoked key is not listed; one revoked before it activated never signed, so it
    retires no key.
    """
    now = utcnow()
    grace = max_token_lifetime()
    rows = db.session.execute(
        db.select(
            SigningKey.kid,
            SigningKey.algorithm,
            SigningKey.activates_at,
            SigningKey.revoked_at,
            SigningKey.public_jwk,
        )
    ).all()
    published: list[dict] = []
    leaves_next: datetime | None = None
    for algorithm in SIGNING_ALGORITHMS:
        keys = sorted(
            (row for row in rows if row.algorithm == algorithm and _has_signed(row)),
            key=lambda row: (row.activates_at, row.kid),
        )
        for key, successor in zip(keys, [*keys[1:], None], strict=False):
            if key.revoked_at is not None:
                continue
            # A key retires when its algorithm's next key activates; drop it once its
            # tokens are dead.
            if successor is not None:
                leaves = successor.activates_at + grace
                if leaves <= now:
                    continue
                leaves_next = leaves if leaves_next is None else min(leaves_next, leaves)
            published.append(key.public_jwk)
    return published, leaves_next


def _has_signed(row) -> bool:
    """Whether the key could have signed: it is not revoked, or was revoked once active."""
    return row.revoked_at is None or row.activates_at <= row.revoked_at

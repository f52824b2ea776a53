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
from idp.keys.service import ALGORITHM, SIGNING_KEYS, ensure_signing_key, publication
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

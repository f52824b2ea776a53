"""Introspection answers for live access tokens, kept per process (``idp.changes``).

A gateway introspects the same access token for every request its holder
sends, and the answer stays the same until the token's login is revoked,
the key that signed it is withdrawn, or the token or its family runs out of
time. With Redis, the lean introspection path (``idp.oauth.hot_paths``) keeps
the JSON it answered for an active access token, per token and asking client,
and gives it again while:

* no token family changed anywhere: a revoked login, machine family or
  client moves the token-family counter, and every instance drops every
  kept answer on its next request;
* no signing key changed anywhere (a withdrawn key moves its counter);
* the clock is before both the token's ``exp`` and its family's absolute
  expiry, checked on every answer, as the full path checks them.

Only ``active`` answers for access tokens are kept: refresh tokens are read
from the database on every introspection (their rotation is theirs to
tell), and an inactive answer costs little. The key is the token's SHA-256
with the asking client's id and kind, so a client never receives an answer
given to another client. Without Redis, nothing is kept.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from idp import changes
from idp.keys.service import SIGNING_KEYS
from idp.oauth.family_state import FAMILIES
from idp.oauth.tokens_view import PresentedToken
from idp.timeutil import epoch_seconds

_answers = changes.cache("introspection-answers", FAMILIES, SIGNING_KEYS, max_entries=10_000)


@dataclass(frozen=True)
class KeptAnswer:
    """The JSON answered for a live access token, and the moment it stops being true."""

    body: str
    until: float  # seconds since the epoch: the earlier of the token's and its family's expiry


def answer_key(token: str, client) -> tuple[bytes, str, str]:
    """What a kept answer is found by: the token's digest, the asking client and its kind."""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    return digest, client.client_id, client.kind


def kept_answer(key: tuple[bytes, str, str]) -> str | None:
    """The JSON kept for ``key`` while it is still true, else None."""
    kept = _answers.get(key, lambda: None)
    if kept is None or kept.until <= time.time():
        return None
    return kept.body


def keep_answer(key: tuple[bytes, str, str], token: PresentedToken, body: str) -> None:
    """Keep ``body``, the active answer for ``token`` read in this request."""
    if token.kind != "access_token" or token.family is None:
        return
    until = min(float(token.expires_at), epoch_seconds(token.family.expires_at))
    _answers.put(key, KeptAnswer(body, until))

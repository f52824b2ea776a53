"""RFC 9068 JWT access tokens: the one place their claims are built."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import timedelta

from flask import current_app
from sqlalchemy.orm import make_transient_to_detached

from idp.auth.bearer import api_audience
from idp.extensions import db
from idp.ids import PREFIXES, new_id, new_time_ordered_id
from idp.keys.service import sign_jwt
from idp.oauth import client_cache
from idp.oauth.models import TokenFamily
from idp.timeutil import utcnow

_INSERT_FAMILY = db.insert(TokenFamily.__table__)


def open_family(
    *,
    client_id: str,
    user_id: str | None,
    organization_id: str | None,
    lifetime: int,
    parent: TokenFamily | None = None,
    sign_in: tuple[int | None, list[str] | None] | None = None,
) -> TokenFamily:
    """Start a token family with a new id (a token exchange, a standing machine family).

    A family exchanged from ``parent`` names it and inherits its browser login;
    ``sign_in`` is its person's (``auth_time``, ``amr``), for its ID tokens.
    The row is written at once with one plain INSERT, so rows that name it (a
    refresh token) can follow without a flush; the caller commits.
    """
    return write_family(
        new_family_row(
            client_id=client_id,
            user_id=user_id,
            organization_id=organization_id,
            lifetime=lifetime,
            parent_id=parent.id if parent is not None else None,
            login_session_id=parent.login_session_id if parent is not None else None,
            sign_in=sign_in,
        )
    )


def new_family_row(
    *,
    client_id: str,
    user_id: str | None,
    organization_id: str | None,
    lifetime: int,
    family_id: str | None = None,
    parent_id: str | None = None,
    login_session_id: str | None = None,
    sign_in: tuple[int | None, list[str] | None] | None = None,
) -> dict:
    """The row of a new token family, for ``open_family`` or a caller that writes it.

    ``sign_in`` is when and how its person signed in (``auth_time``, ``amr``).
    """
    now = utcnow()
    auth_time, amr = sign_in or (None, None)
    return {
        "id": family_id or new_time_ordered_id(PREFIXES["token_family"]),
        "client_id": client_id,
        "user_id": user_id,
        "organization_id": organization_id,
        "created_at": now,
        "expires_at": now + timedelta(seconds=lifetime),
        "revoked_at": None,
        "revoked_reason": None,
        "parent_id": parent_id,
        "login_session_id": login_session_id,
        "auth_time": auth_time,
        "amr": amr,
    }


def write_family(values: dict) -> TokenFamily:
    """Write the family row ``values`` with one plain INSERT; see ``written_family``."""
    db.session.execute(_INSERT_FAMILY, values)
    return written_family(values)


def written_family(values: dict) -> TokenFamily:
    """The family whose row ``values`` was just written, in the session like a loaded row.

    Later changes to it (a revocation) flush as an UPDATE.
    """
    family = TokenFamily(**values)
    make_transient_to_detached(family)
    db.session.add(family)
    return family


def standing_machine_family(
    *, client_id: str, organization_id: str | None
) -> TokenFamily | client_cache.StandingFamily:
    """The family shared by a service client's client-credentials tokens; opened when missing.

    Issuing a machine token then writes nothing, which keeps the token endpoint
    near the cost of signing. Revoking any of these tokens (RFC 7009), deleting the
    client or its family's end revokes them all; the client simply asks again.
    The family outlives every token minted from it by at least one token lifetime.
    With Redis, the process remembers it (``client_cache``) until that family's
    revocation or any client change moves the shared counter.
    """
    access_ttl = current_app.config["IDP_ACCESS_TOKEN_TTL"]
    known = client_cache.standing_family(client_id, min_remaining=access_ttl)
    if known is not None:
        return known
    family = db.session.scalar(
        db.select(TokenFamily)
        .where(
            TokenFamily.client_id == client_id,
            TokenFamily.user_id.is_(None),
            TokenFamily.revoked_at.is_(None),
            TokenFamily.expires_at > utcnow() + timedelta(seconds=access_ttl),
        )
        .order_by(TokenFamily.expires_at.desc())
        .limit(1)
    )
    if family is None:
        # Not remembered until a later request finds it committed.
        family = open_family(
            client_id=client_id,
            user_id=None,
            organization_id=organization_id,
            lifetime=max(current_app.config["IDP_REFRESH_TOKEN_TTL"], 2 * access_ttl),
        )
    else:
        client_cache.remember_standing_family(client_id, family)
    return family


def mint_access_token(
    *,
    client_id: str,
    subject: str,
    family_id: str,
    hub: str,
    organization_id: str | None,
    roles: Iterable[str],
    scope: str,
    ttl: int | None = None,
) -> tuple[str, int]:
    """Sign an ``at+jwt`` access token and return it with its lifetime in seconds.

    Claims follow RFC 9068 section 2.2 plus ours: ``hub``, ``org``, ``roles``
    and ``sid`` (the token family, checked on every use).
    """
    lifetime = ttl or current_app.config["IDP_ACCESS_TOKEN_TTL"]
    now = int(time.time())
    claims = {
        "iss": current_app.config["IDP_ISSUER"],
        "sub": subject,
        "aud": api_audience(),
        "exp": now + lifetime,
        "iat": now,
        "jti": new_id(PREFIXES["access_token"], 22),
        "client_id": client_id,
        "scope": scope,
        "hub": hub,
        "org": organization_id,
        "roles": sorted(roles),
        "sid": family_id,
    }
    return sign_jwt(claims, typ="at+jwt"), lifetime

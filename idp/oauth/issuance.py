"""Issuing tokens: access token (via ``tokens.mint_access_token``) plus a rotating refresh token."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from flask import current_app

from idp import changes
from idp.accounts.models import User
from idp.extensions import db, on_postgresql
from idp.ids import PREFIXES, new_time_ordered_id
from idp.oauth.models import AuthorizationCode, OAuthClient, RefreshToken, TokenFamily, sha256_hex
from idp.oauth.tokens import mint_access_token, new_family_row, write_family, written_family
from idp.orgs.models import Membership
from idp.timeutil import utcnow

# Each callable gets the authorization code row being exchanged and returns a
# dict merged into the token response (the consent flow adds its ``grant``).
TOKEN_RESPONSE_EXTRAS: list[Callable[[AuthorizationCode], dict]] = []

REFRESH_TOKEN_BYTES = 32  # 256 random bits


_USER_WITH_ROLES = (
    db.select(User, Membership.role)
    .outerjoin(
        Membership,
        (Membership.user_id == User.id)
        & (Membership.organization_id == db.bindparam("organization_id")),
    )
    .where(User.id == db.bindparam("user_id"))
)


def user_with_roles(user_id: str, organization_id: str | None) -> tuple[User | None, list[str]]:
    """The user and their roles in ``organization_id``, read in one query."""
    if organization_id is None:
        return db.session.get(User, user_id), []
    rows = db.session.execute(
        _USER_WITH_ROLES, {"user_id": user_id, "organization_id": organization_id}
    ).all()
    if not rows:
        return None, []
    return rows[0][0], [role for _, role in rows if role is not None]


def token_hub(client: OAuthClient, user: User | None) -> str:
    """The ``hub`` claim: the user's hub for people, the client's hub for machines."""
    return user.hub if user is not None else client.hub


_FAMILIES = TokenFamily.__table__
_REFRESH_TOKENS = RefreshToken.__table__
_INSERT_REFRESH_TOKEN = db.insert(_REFRESH_TOKENS)
# PostgreSQL writes a new family and its first refresh token in one statement
# (a data-modifying WITH; the token's foreign key is checked when both rows are in).
_INSERT_FAMILY_AND_REFRESH_TOKEN = db.insert(_REFRESH_TOKENS).add_cte(
    db.insert(_FAMILIES)
    .values({c.name: db.bindparam(f"new_family_{c.name}") for c in _FAMILIES.c})
    .cte("new_family")
)


def new_refresh_token(family: TokenFamily, scope: str) -> str:
    """Store (hashed, with one plain INSERT) and return a new opaque refresh token of ``family``."""
    value, row = _refresh_token_row(family.id, scope)
    db.session.execute(_INSERT_REFRESH_TOKEN, row)
    return value


def _refresh_token_row(family_id: str, scope: str) -> tuple[str, dict]:
    """A new refresh token's value and the row that stores its hash."""
    value = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    row = {
        "id": new_time_ordered_id(PREFIXES["refresh_token"]),
        "token_hash": sha256_hex(value),
        "family_id": family_id,
        "scope": scope,
        "created_at": utcnow(),
        "rotated_at": None,
    }
    return value, row


def _open_family_with_refresh_token(family_row: dict, scope: str) -> tuple[TokenFamily, str]:
    """Write a new family and its first refresh token: one round trip on PostgreSQL."""
    value, token_row = _refresh_token_row(family_row["id"], scope)
    if on_postgresql():
        params = token_row | {f"new_family_{name}": v for name, v in family_row.items()}
        changes.note_written(db.session, _FAMILIES.name, inserted=True)  # inside its WITH
        db.session.execute(_INSERT_FAMILY_AND_REFRESH_TOKEN, params)
        return written_family(family_row), value
    # SQLite has no data-modifying WITH, and its statements cost no round trip.
    family = write_family(family_row)
    db.session.execute(_INSERT_REFRESH_TOKEN, token_row)
    return family, value


def issue_tokens(
    *,
    client: OAuthClient,
    user: User | None,
    scope: str,
    organization_id: str | None,
    family: TokenFamily | None = None,
    include_refresh_token: bool = False,
    roles: list[str] | None = None,
    new_family_id: str | None = None,
    login_session_id: str | None = None,
    sign_in: tuple[int, list[str]] | None = None,
    refresh_scope: str | None = None,
) -> tuple[dict, TokenFamily]:
    """Build the RFC 6749 section 5.1 token response; opens a family unless one is given.

    ``roles`` are the user's roles in ``organization_id``, read with the user
    by the grant (``user_with_roles``); required when there is a user.
    ``new_family_id`` is the id of the family opened, when what opens it names it,
    and ``login_session_id`` the browser login it belongs to; ``sign_in`` is
    when and how its person signed in (``auth_time``, ``amr``), for its ID tokens.
    ``refresh_scope`` is the new refresh token's scope when it differs from the
    access token's: a refresh that narrows the access token keeps the refresh
    token's scope (RFC 6749 section 6).
    """
    if user is not None and roles is None:
        raise ValueError("issue_tokens: a user's token needs the roles read with the user")
    config = current_app.config
    refresh_token = None
    refresh_scope = scope if refresh_scope is None else refresh_scope
    if family is None:
        lifetime = (
            config["IDP_REFRESH_TOKEN_TTL"]
            if include_refresh_token
            else config["IDP_ACCESS_TOKEN_TTL"]
        )
        family_row = new_family_row(
            client_id=client.client_id,
            user_id=user.id if user else None,
            organization_id=organization_id,
            lifetime=lifetime,
            family_id=new_family_id,
            login_session_id=login_session_id,
            sign_in=sign_in,
        )
        if include_refresh_token:
            family, refresh_token = _open_family_with_refresh_token(family_row, refresh_scope)
        else:
            family = write_family(family_row)
    elif include_refresh_token:
        refresh_token = new_refresh_token(family, refresh_scope)
    access_token, expires_in = mint_access_token(
        client_id=client.client_id,
        subject=user.id if user else client.client_id,
        family_id=family.id,
        hub=token_hub(client, user),
        organization_id=organization_id,
        roles=roles if user else [],
        scope=scope,
    )
    token = {
        "token_type": "Bearer",
        "access_token": access_token,
        "expires_in": expires_in,
        "scope": scope,
    }
    if refresh_token is not None:
        token["refresh_token"] = refresh_token
    return token, family

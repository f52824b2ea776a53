"""RFC 6750 bearer authentication of /v1 routes with our RFC 9068 access tokens."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jwt
from flask import current_app, g, request

from idp.errors import DomainError
from policies.actor import Actor


class InvalidToken(DomainError):
    """No valid access token; answered with ``WWW-Authenticate`` as RFC 6750 section 3 says."""

    status, code, title = 401, "invalid_token", "Invalid or missing access token"


def api_audience() -> str:
    """The ``aud`` our access tokens carry for this API."""
    config = current_app.config  # one context lookup: every token and check asks
    return config.get("IDP_API_AUDIENCE") or config["IDP_ISSUER"]


def family_is_active(sid: str | None) -> bool:
    """Whether the token family ``sid`` exists, is unrevoked and unexpired."""
    from idp.oauth.family_state import family_state

    state = family_state(sid)
    return state is not None and state.is_active


def verify_access_token(token: str) -> dict:
    """Return the claims of a valid, unrevoked access token, or raise ``jwt.InvalidTokenError``."""
    from idp.keys.service import verify_jwt

    claims = verify_jwt(token, audience=api_audience(), typ="at+jwt")
    if not family_is_active(claims.get("sid")):
        raise jwt.InvalidTokenError("revoked")
    return claims


def actor_from_claims(claims: dict) -> Actor:
    """Build the policy actor from verified access-token claims.

    A person's permissions come from ``roles``, not ``scope``: only the hub frontends
    obtain a person's token, and theirs carry OpenID scopes alone (``openid email
    profile``). A client of another kind given people's tokens would need scopes that
    bound what such a token may do, checked here beside the roles.
    """
    machine = claims.get("sub") == claims.get("client_id")
    return Actor(
        hub=claims.get("hub", ""),
        organization_id=claims.get("org"),
        roles=frozenset(claims.get("roles") or ()),
        scopes=frozenset((claims.get("scope") or "").split()),
        user_id=None if machine else claims.get("sub"),
        client_id=claims.get("client_id"),
    )


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate() -> Actor:
    """Authenticate the request's bearer token and remember the actor on ``g``."""
    token = _bearer_token()
    if token is None:
        raise InvalidToken("Send an access token: Authorization: Bearer <token>.")
    try:
        claims = verify_access_token(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("The access token is invalid, expired or revoked.") from exc
    g.actor = actor_from_claims(claims)
    g.token_claims = claims
    return g.actor


def require_auth(view: Callable) -> Callable:
    """Decorator: the view runs only for a valid bearer token; ``current_actor()`` gives it."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        authenticate()
        return view(*args, **kwargs)

    wrapper._idp_requires_auth = True  # read by the OpenAPI security documentation
    return wrapper


def current_actor() -> Actor:
    """The authenticated actor of this request."""
    return g.actor

"""The userinfo endpoint's bearer handling (RFC 6750 errors with ``WWW-Authenticate``)."""

from __future__ import annotations

import jwt
from flask import Response, jsonify, request

from idp.accounts.models import User
from idp.auth.bearer import verify_access_token
from idp.extensions import db
from idp.oauth.userinfo import userinfo


def _bearer_error(status: int, error: str, description: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["WWW-Authenticate"] = (
        f'Bearer error="{error}", error_description="{description}"'
    )
    return response


def userinfo_response() -> Response:
    """Claims about the token's user; 401 for a bad token, 403 without ``openid`` scope."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        response = _bearer_error(401, "invalid_token", "Send an access token.")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    try:
        claims = verify_access_token(value.strip())
    except jwt.InvalidTokenError:
        return _bearer_error(401, "invalid_token", "The access token is invalid or revoked.")
    scope = claims.get("scope") or ""
    if "openid" not in scope.split():
        return _bearer_error(403, "insufficient_scope", "The token lacks the openid scope.")
    user = db.session.get(User, claims.get("sub") or "")
    if user is None or not user.is_active:
        return _bearer_error(401, "invalid_token", "The account is no longer active.")
    return jsonify(userinfo(user, claims.get("org"), scope))

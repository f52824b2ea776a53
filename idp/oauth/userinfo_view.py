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


def _presented_token() -> tuple[str | None, int]:
    """The access token from the header (RFC 6750 2.1) or a form body (2.2), and how many came."""
    found = []
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        body_token = request.form.get("access_token", "").strip()
        if body_token:
            found.append(body_token)
    return (found[0] if found else None), len(found)


def userinfo_response() -> Response:
    """Claims about the token's user; 401 for a bad token, 403 without ``openid`` scope."""
    token, count = _presented_token()
    if count > 1:
        # RFC 6750 section 2: a client must not use more than one method per request.
        return _bearer_error(400, "invalid_request", "Send the access token in one place only.")
    if token is None:
        response = _bearer_error(401, "invalid_token", "Send an access token.")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    try:
        claims = verify_access_token(token)
    except jwt.InvalidTokenError:
        return _bearer_error(401, "invalid_token", "The access token is invalid or revoked.")
    scope = claims.get("scope") or ""
    if "openid" not in scope.split():
        return _bearer_error(403, "insufficient_scope", "The token lacks the openid scope.")
    user = db.session.get(User, claims.get("sub") or "")
    if user is None or not user.is_active:
        return _bearer_error(401, "invalid_token", "The account is no longer active.")
    return jsonify(userinfo(user, claims.get("org"), scope))

"""OAuth 2.0 / OpenID Connect endpoints: authorize, token, revoke, introspect, userinfo, logout."""

from __future__ import annotations

import time

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Blueprint, Response, jsonify, redirect, request, url_for

from idp.extensions import csrf, db
from idp.login.session import auth_time, current_user
from idp.oauth import hot_paths
from idp.oauth import hub as _hub  # noqa: F401  (registers the "hub" handler)
from idp.oauth.authorize import (
    AuthorizationRequest,
    authorization_error_page,
    dispatch,
    error_redirect,
)
from idp.oauth.cors import add_cors_headers
from idp.oauth.logout import end_session
from idp.oauth.server import authorization_server
from idp.oauth.userinfo_view import userinfo_response
from idp.ratelimits import rate_limited

blp = Blueprint("oauth", __name__)
blp.after_request(add_cors_headers)


def _to_login(authz: AuthorizationRequest) -> Response:
    return redirect(url_for("login.login", request_id=authz.id))


def _malformed_parameter() -> str | None:
    """The first of redirect_uri and response_type that is not printable ASCII (RFC 3986)."""
    for name in ("redirect_uri", "response_type"):
        value = request.values.get(name) or ""
        if not all(" " <= ch <= "~" for ch in value):
            return name
    return None


def _login_older_than_max_age() -> bool:
    """OpenID Connect Core 3.1.2.1: a login older than ``max_age`` seconds is asked again."""
    max_age = request.values.get("max_age") or ""
    started = auth_time()
    return max_age.isdigit() and started is not None and time.time() - started > int(max_age)


@blp.route("/oauth/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    """RFC 6749 section 4.1.1 / OpenID Connect Core 3.1.2: start a code flow."""
    malformed = _malformed_parameter()
    if malformed:
        # Authlib quotes these in its error descriptions, which allow printable ASCII only.
        return authorization_error_page(
            OAuth2Error(f"Malformed '{malformed}'.", error="invalid_request")
        )
    user = current_user()
    try:
        grant = authorization_server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        if error.redirect_uri:
            return error_redirect(
                error.redirect_uri, error.error, error.description, request.values.get("state")
            )
        return authorization_error_page(error)
    prompt = (request.values.get("prompt") or "").split()
    force_login = "login" in prompt or _login_older_than_max_age()
    if force_login and "none" in prompt:
        return error_redirect(
            grant.request.payload.redirect_uri,
            "login_required",
            "The login is older than max_age.",
            request.values.get("state"),
        )
    authz = AuthorizationRequest.start(request.values.to_dict(), grant, force_login=force_login)
    if user is None or force_login:
        return _to_login(authz)
    return dispatch(authz)


@blp.route("/oauth/authorize/resume/<request_id>")
def resume(request_id: str):
    """Continue a pending authorization request after login."""
    authz = AuthorizationRequest.load(request_id)
    if authz is None:
        return authorization_error_page(
            OAuth2Error(
                "This sign-in request has expired. Start again from the app.",
                error="invalid_request",
            )
        )
    if current_user() is None:
        return _to_login(authz)
    return dispatch(authz)


@blp.route("/oauth/token", methods=["POST"])
@csrf.exempt
@rate_limited("IDP_TOKEN_RATE_LIMIT")
def token():
    """RFC 6749 section 3.2: code, refresh, client credentials and token exchange grants."""
    response = hot_paths.client_credentials()
    if response is None:
        response = authorization_server.create_token_response()
    # Also commits what a refused request revoked (a replayed code or refresh token).
    _commit_if_begun()
    return response


def _commit_if_begun() -> None:
    """Commit the request's transaction if anything began one (most tokens write nothing)."""
    if db.session.registry.has() and db.session().in_transaction():
        db.session.commit()


@blp.route("/oauth/revoke", methods=["POST"])
@csrf.exempt
@rate_limited("IDP_TOKEN_RATE_LIMIT")
def revoke():
    """RFC 7009 token revocation."""
    response = authorization_server.create_endpoint_response("revocation")
    db.session.commit()
    return response


@blp.route("/oauth/introspect", methods=["POST"])
@csrf.exempt
def introspect():
    """RFC 7662 token introspection for confidential clients."""
    response = hot_paths.introspection()
    if response is None:
        response = authorization_server.create_endpoint_response("introspection")
    return response


@blp.route("/oauth/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    """OpenID Connect Core 5.3 userinfo for a bearer access token with ``openid`` scope."""
    return userinfo_response()


@blp.route("/oauth/jwks")
def jwks():
    """The public signing keys (RFC 7517), cacheable for ``JWKS_MAX_AGE`` seconds."""
    from idp.keys.service import JWKS_MAX_AGE, ensure_signing_key, published_jwks

    ensure_signing_key()
    response = jsonify(published_jwks())
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return response


@blp.route("/oauth/logout", methods=["GET", "POST"])
def logout():
    """OpenID Connect RP-Initiated Logout 1.0 (the ``end_session_endpoint``)."""
    return end_session()


@blp.route("/.well-known/openid-configuration")
@blp.route("/.well-known/oauth-authorization-server")
def discovery():
    """OpenID Connect Discovery 1.0 and RFC 8414 metadata (the same document)."""
    from idp.oauth.metadata import server_metadata

    response = jsonify(server_metadata())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response

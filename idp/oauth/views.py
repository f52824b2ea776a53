"""OAuth 2.0 / OpenID Connect endpoints: authorize, token, revoke, introspect, userinfo, logout."""

from __future__ import annotations

import time

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Blueprint, current_app, jsonify, request

from idp.api_inputs import printable_ascii
from idp.extensions import csrf, db
from idp.keys.jwks import jwks_document
from idp.keys.service import JWKS_MAX_AGE
from idp.login.session import auth_time, current_user
from idp.oauth import hot_paths
from idp.oauth import hub as _hub  # noqa: F401  (registers the "hub" handler)
from idp.oauth.authorize import (
    RESPONSE_MODES,
    AuthorizationRequest,
    authorization_error_page,
    dispatch,
    error_response,
    response_mode_of,
    to_login,
)
from idp.oauth.cors import add_cors_headers
from idp.oauth.logout import end_session
from idp.oauth.server import authorization_server, query_client, repeated_parameter
from idp.oauth.userinfo_view import userinfo_response
from idp.ratelimits import rate_limited

blp = Blueprint("oauth", __name__)
blp.after_request(add_cors_headers)

# OpenID Connect Core 6.1 and 6.2: request objects are not supported (the metadata says so).
UNSUPPORTED_PARAMETERS = {
    "request": "request_not_supported",
    "request_uri": "request_uri_not_supported",
}
# The largest max_age taken: what Keycloak reads (a Java int), 68 years in seconds.
MAX_AGE_LIMIT = 2**31 - 1


def _malformed_parameter(values) -> str | None:
    """The first of redirect_uri and response_type that Authlib could not quote in an error.

    Error descriptions are printable ASCII without '"' and '\\' (RFC 6749
    section 5.2), and neither belongs in a URI (RFC 3986) or a response type.
    """
    for name in ("redirect_uri", "response_type"):
        value = values.get(name) or ""
        if not printable_ascii(value) or '"' in value or "\\" in value:
            return name
    return None


def _refusal_before_validation(values) -> OAuth2Error | None:
    """A repeated parameter (RFC 6749 section 3.1), or a request object we do not read.

    Any parameter sent twice is ``invalid_request``, whichever it is: Authlib
    checks only some of them, and which of two values each check and handler
    reads would otherwise be up to each.
    """
    repeated = repeated_parameter(*values.dicts)  # the query string and, for a POST, the form
    if repeated:
        return OAuth2Error(repeated, error="invalid_request")
    for name, error in UNSUPPORTED_PARAMETERS.items():
        if name in values:
            return OAuth2Error(f"The '{name}' parameter is not supported.", error=error)
    return None


def _registered_redirect_uri(values) -> str | None:
    """The request's one redirect URI if its one client registered it exactly, else None."""
    client_ids = values.getlist("client_id")
    redirect_uris = values.getlist("redirect_uri")
    if len(client_ids) != 1 or len(redirect_uris) != 1:
        return None
    client = query_client(client_ids[0])
    if client is None or not client.check_redirect_uri(redirect_uris[0]):
        return None
    return redirect_uris[0]


def _response_mode(values) -> str:
    """The mode to answer this request in: the requested one if supported and sent once."""
    modes = values.getlist("response_mode")
    return response_mode_of(modes[0] if len(modes) == 1 else None)


def _requested_max_age(values) -> int | None:
    """OpenID Connect Core 3.1.2.1 ``max_age`` in seconds; None when absent or empty.

    Raises ValueError unless it is ASCII digits worth at most ``MAX_AGE_LIMIT``
    seconds: a sign, another script's digits or a longer number is an invalid
    request, as Keycloak (a Java int) and node-oidc-provider (a non-negative
    safe integer) answer, rather than a login that never or always expires.
    """
    value = values.get("max_age") or ""
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 10) or int(value) > MAX_AGE_LIMIT:
        raise ValueError(value)
    return int(value)


def _login_older_than(max_age: int | None) -> bool:
    """OpenID Connect Core 3.1.2.1: a login older than ``max_age`` seconds is asked again."""
    if max_age is None:
        return False
    started = auth_time()
    return started is not None and time.time() - started > max_age


@blp.route("/oauth/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    """RFC 6749 section 4.1.1 / OpenID Connect Core 3.1.2: start a code flow.

    Errors found once the client's redirect URI is known to be registered go
    back to it (with ``state`` and ``iss``, in the requested response mode);
    others are shown on an error page.
    """
    values = request.values
    malformed = _malformed_parameter(values)
    if malformed:
        # Authlib quotes these in its error descriptions, which allow printable ASCII only.
        return authorization_error_page(
            OAuth2Error(f"Malformed '{malformed}'.", error="invalid_request")
        )
    mode = _response_mode(values)
    refusal = _refusal_before_validation(values)
    if refusal is not None:
        redirect_uri = _registered_redirect_uri(values)
        if redirect_uri is None:
            return authorization_error_page(refusal)
        # A repeated state is echoed in neither of its values.
        state = values.get("state") if len(values.getlist("state")) == 1 else None
        return error_response(
            redirect_uri, refusal.error, refusal.description, state, response_mode=mode
        )
    user = current_user()
    state = values.get("state")
    try:
        grant = authorization_server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        if error.redirect_uri:
            return error_response(
                error.redirect_uri, error.error, error.description, state, response_mode=mode
            )
        return authorization_error_page(error)
    redirect_uri = grant.request.payload.redirect_uri
    if (values.get("response_mode") or "query") not in RESPONSE_MODES:
        # ``mode`` is then the query: a mode we do not speak cannot carry its own refusal.
        return error_response(
            redirect_uri,
            "invalid_request",
            "Unsupported 'response_mode': use 'query' or 'form_post'.",
            state,
            response_mode=mode,
        )
    try:
        max_age = _requested_max_age(values)
    except ValueError:
        return error_response(
            redirect_uri,
            "invalid_request",
            f"'max_age' must be a number of seconds up to {MAX_AGE_LIMIT}.",
            state,
            response_mode=mode,
        )
    prompt = (values.get("prompt") or "").split()
    if user is None and "none" in prompt:
        # Authlib answers this for OpenID Connect requests only; plain OAuth ones too.
        return error_response(
            redirect_uri, "login_required", "Nobody is signed in.", state, response_mode=mode
        )
    force_login = "login" in prompt or _login_older_than(max_age)
    if force_login and "none" in prompt:
        return error_response(
            redirect_uri,
            "login_required",
            "The login is older than max_age.",
            state,
            response_mode=mode,
        )
    authz = AuthorizationRequest.start(values.to_dict(), grant, force_login=force_login)
    if user is None:
        return to_login(authz)
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
        return to_login(authz)
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
    """The public signing keys (RFC 7517), cacheable for ``JWKS_MAX_AGE`` seconds.

    A strong ETag lets a cache revalidate: ``If-None-Match`` with it answers 304
    (RFC 9110 section 13.1.2).
    """
    document = jwks_document()
    response = current_app.response_class(document.body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    response.set_etag(document.etag)
    return response.make_conditional(request)


@csrf.exempt  # an RP may POST its logout request; the confirmation form's CSRF is checked there
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

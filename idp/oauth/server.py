"""Authlib's authorization server, wired in this one place."""

from __future__ import annotations

import functools

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, current_app
from flask import request as flask_request

from idp.api_inputs import printable_ascii
from idp.extensions import db
from idp.oauth.client_cache import find_client
from idp.oauth.exchange import TokenExchangeGrant
from idp.oauth.grants import (
    CLIENT_AUTH,
    CONFIDENTIAL_AUTH,
    AuthorizationCodeGrant,
    IdTokenExtension,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from idp.oauth.machine_grant import ClientCredentialsGrant
from idp.oauth.models import ClientRules, TokenFamily
from idp.oauth.revocation import revoke_family
from idp.oauth.tokens_view import parse_token
from idp.timeutil import epoch_seconds


def query_client(client_id: str) -> ClientRules | None:
    """A registered, undeleted client (a per-process snapshot when Redis is configured)."""
    # A client id is printable ASCII (RFC 6749 appendix A.1); PostgreSQL refuses a NUL in text.
    if not client_id or len(client_id) > 80 or not printable_ascii(client_id):
        return None
    client = find_client(client_id)
    return client if client is not None and client.deleted_at is None else None


def basic_credentials(headers) -> tuple[str | None, str | None]:
    """The client id and secret of an HTTP Basic header (RFC 6749 section 2.3.1), or Nones.

    Authlib's reading, except that a header that is not base64 of UTF-8 holds
    no credentials rather than raising.
    """
    try:
        return extract_basic_authorization(headers)
    except ValueError:  # not ASCII, or not UTF-8 once decoded
        return None, None


def _client_secret_basic(query_client, request) -> ClientRules | None:
    """Authlib's ``client_secret_basic`` method, reading the header with ``basic_credentials``."""
    client_id, secret = basic_credentials(request.headers)
    if not client_id or not secret:
        return None
    client = query_client(client_id)
    if client is None:
        raise InvalidClientError(
            status_code=401, description="The client does not exist on this server."
        )
    return client if client.check_client_secret(secret) else None


def repeated_parameter(*sources) -> str | None:
    """Why a request is refused if a parameter of ``sources`` (MultiDicts) is sent twice, else None.

    RFC 6749 sections 3.1 and 3.2: request parameters MUST NOT be included
    more than once; this holds for every parameter, as at Keycloak, and across
    ``sources`` (a query string and a form body) too.
    """
    names: set[str] = set()
    for source in sources:
        for name, values in source.lists():
            if len(values) > 1 or name in names:
                # Only a plain name is quoted: error descriptions allow printable ASCII only.
                plain = len(name) <= 40 and name.isascii() and name.replace("_", "").isalnum()
                return f"Repeated '{name}' parameter." if plain else "Repeated parameter."
            names.add(name)
    return None


def _token_request_error(request: OAuth2Request) -> InvalidRequestError | None:
    """``invalid_request`` for a repeated parameter, or for two ways of authenticating the client.

    RFC 6749 section 2.3: a client uses one authentication method per request,
    so HTTP Basic and a ``client_secret`` in the body together are refused
    rather than one of them tried after the other.
    """
    repeated = repeated_parameter(request.form)
    if repeated:
        return InvalidRequestError(repeated)
    if request.form.get("client_secret"):
        scheme = (request.headers.get("Authorization") or "").split(None, 1)[:1]
        if scheme and scheme[0].lower() == "basic":
            return InvalidRequestError(
                "Authenticate the client with HTTP Basic or the body, not both."
            )
    return None


class _FormPayload(OAuth2Payload):
    """The parameters of a token, revocation or introspection request: its form body alone.

    RFC 6749 section 3.2 has them sent in the POST body; one in the query string
    is not a parameter of the request (Keycloak ignores them too).
    """

    def __init__(self, form):
        self._form = form

    @property
    def data(self):
        """The form body's first value of each parameter."""
        return self._form

    @property
    def datalist(self):
        """Every value of each parameter of the form body (Authlib's interface; unused here)."""
        return {name: self._form.getlist(name) for name in self._form}


class _Request(FlaskOAuth2Request):
    """Authlib's Flask request, its URL spelled from parts Flask already parsed.

    Authlib only checks the URL's transport (https, or http on a loopback host)
    and keeps it; Werkzeug's ``request.url`` re-encodes the whole of it as an IRI.
    With ``form_only`` its parameters are those of the body (``_FormPayload``).
    """

    def __init__(self, request, *, form_only: bool = False):
        query = request.environ.get("QUERY_STRING", "")
        url = f"{request.scheme}://{request.host}{request.root_path}{request.path}"
        OAuth2Request.__init__(
            self,
            method=request.method,
            uri=f"{url}?{query}" if query else url,
            headers=request.headers,
        )
        self._request = request
        self.payload = _FormPayload(request.form) if form_only else FlaskOAuth2Payload(request)


class IdpAuthorizationServer(AuthorizationServer):
    """Flask authorization server that also accepts a stored (resumed) authorization request.

    The token, revocation and introspection endpoints read their parameters
    from the form body only, refuse a repeated one and two client
    authentications at once (``_token_request_error``).
    """

    def create_oauth2_request(self, request):
        """Use ``request`` when it already is an OAuth2Request (a resumed authorization).

        Otherwise wrap Flask's request object itself, not its context-local proxy:
        Authlib reads the parameters through it dozens of times per request.
        """
        if isinstance(request, OAuth2Request):
            return request
        return _Request(flask_request._get_current_object())

    def create_token_response(self, request=None):
        """RFC 6749 section 3.2: the token endpoint's answer."""
        return self._checked(request, super().create_token_response)

    def create_endpoint_response(self, name, request=None):
        """The revocation (RFC 7009) or introspection (RFC 7662) endpoint's answer."""
        return self._checked(request, functools.partial(super().create_endpoint_response, name))

    def _checked(self, request, respond):
        """``respond(request)``; without ``request``, the current one read from its form body.

        That one is answered ``invalid_request`` instead if ``_token_request_error`` finds why.
        """
        if request is None:
            request = _Request(flask_request._get_current_object(), form_only=True)
            error = _token_request_error(request)
            if error is not None:
                return self.handle_error_response(request, error)
        return respond(request)


class TokenRevocation(RevocationEndpoint):
    """RFC 7009: revoking a refresh or access token revokes its whole family."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH

    def query_token(self, token_string, token_type_hint):
        """Our token (refresh or access), whatever its state."""
        return parse_token(token_string, token_type_hint)

    def revoke_token(self, token, request):
        """Revoke the family the token belongs to."""
        family = db.session.get(TokenFamily, token.family.id) if token.family else None
        if family is not None:
            # On record as the client's act: RFC 7009 lets only the token's own client revoke it.
            revoke_family(
                family,
                "revoked_by_client",
                actor_id=request.client.get_client_id(),
                actor_type="client",
            )


class TokenIntrospection(IntrospectionEndpoint):
    """RFC 7662 for confidential clients; ``active`` reflects revocation at once."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH

    def query_token(self, token_string, token_type_hint):
        """Our token (refresh or access), whatever its state."""
        return parse_token(token_string, token_type_hint)

    def check_permission(self, token, client, request):
        """Platform services may introspect any token; other clients only their own."""
        return client.kind == "platform" or token.check_client(client)

    def introspect_token(self, token):
        """RFC 7662 section 2.2 response members, plus our ``hub``, ``org`` and ``roles``."""
        claims = token.claims
        body = {
            "active": True,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "client_id": token.client_id,
            "scope": claims.get("scope", ""),
            "sub": claims.get("sub"),
            "iss": current_app.config["IDP_ISSUER"],
            "org": claims.get("org"),
        }
        for name in ("exp", "iat", "aud", "jti", "hub", "roles"):
            if name in claims:
                body[name] = claims[name]
        if token.kind == "refresh_token":
            body["exp"] = int(epoch_seconds(token.family.expires_at))
        return body


authorization_server = IdpAuthorizationServer()


def init_oauth(app: Flask) -> None:
    """Bind the authorization server, its grants and endpoints to ``app``."""
    from idp.oauth.metadata import supported_scopes

    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", supported_scopes())
    authorization_server.init_app(app, query_client=query_client, save_token=_no_save)
    if authorization_server._token_grants:
        return  # grants are process-wide; a second app reuses them
    authorization_server.register_client_auth_method("client_secret_basic", _client_secret_basic)
    authorization_server.register_grant(
        AuthorizationCodeGrant, [S256CodeChallenge(required=True), IdTokenExtension()]
    )
    authorization_server.register_grant(RefreshTokenGrant)
    authorization_server.register_grant(ClientCredentialsGrant)
    authorization_server.register_grant(TokenExchangeGrant)
    authorization_server.register_endpoint(TokenRevocation)
    authorization_server.register_endpoint(TokenIntrospection)


def _no_save(token, request) -> None:
    """Tokens are stored while they are issued (``issuance.issue_tokens``)."""

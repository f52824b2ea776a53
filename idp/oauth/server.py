"""Authlib's authorization server, wired in this one place."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, current_app
from flask import request as flask_request

from idp.extensions import db
from idp.oauth.client_cache import find_client
from idp.oauth.exchange import TokenExchangeGrant
from idp.oauth.grants import (
    CLIENT_AUTH,
    CONFIDENTIAL_AUTH,
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    IdTokenExtension,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from idp.oauth.models import ClientRules, TokenFamily
from idp.oauth.revocation import revoke_family
from idp.oauth.tokens_view import parse_token


def query_client(client_id: str) -> ClientRules | None:
    """A registered, undeleted client (a per-process snapshot when Redis is configured)."""
    if not client_id or len(client_id) > 80:
        return None
    client = find_client(client_id)
    return client if client is not None and client.deleted_at is None else None


class _Request(FlaskOAuth2Request):
    """Authlib's Flask request, its URL spelled from parts Flask already parsed.

    Authlib only checks the URL's transport (https, or http on a loopback host)
    and keeps it; Werkzeug's ``request.url`` re-encodes the whole of it as an IRI.
    """

    def __init__(self, request):
        query = request.environ.get("QUERY_STRING", "")
        url = f"{request.scheme}://{request.host}{request.root_path}{request.path}"
        OAuth2Request.__init__(
            self,
            method=request.method,
            uri=f"{url}?{query}" if query else url,
            headers=request.headers,
        )
        self._request = request
        self.payload = FlaskOAuth2Payload(request)


class IdpAuthorizationServer(AuthorizationServer):
    """Flask authorization server that also accepts a stored (resumed) authorization request."""

    def create_oauth2_request(self, request):
        """Use ``request`` when it already is an OAuth2Request (a resumed authorization).

        Otherwise wrap Flask's request object itself, not its context-local proxy:
        Authlib reads the parameters through it dozens of times per request.
        """
        if isinstance(request, OAuth2Request):
            return request
        return _Request(flask_request._get_current_object())


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
            revoke_family(family, "revoked_by_client")


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
            body["exp"] = int(token.family.expires_at.timestamp())
        return body


authorization_server = IdpAuthorizationServer()


def init_oauth(app: Flask) -> None:
    """Bind the authorization server, its grants and endpoints to ``app``."""
    from idp.oauth.metadata import supported_scopes

    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", supported_scopes())
    authorization_server.init_app(app, query_client=query_client, save_token=_no_save)
    if authorization_server._token_grants:
        return  # grants are process-wide; a second app reuses them
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

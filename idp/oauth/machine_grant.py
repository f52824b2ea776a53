"""The client-credentials grant (RFC 6749 section 4.4): machine tokens of services.

A service gets a token of its own organization with its own scopes (all of
them, or those it asks for), in the client's standing family, and no refresh
token. ``idp.oauth.hot_paths`` answers the everyday request with the same two
functions, without Authlib's plumbing.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.util import scope_to_list

from idp.oauth.grants import CONFIDENTIAL_AUTH
from idp.oauth.issuance import issue_tokens
from idp.oauth.tokens import standing_machine_family


def machine_scope(client, requested: str | None) -> str | None:
    """The scope a client-credentials token gets: all of the client's, or those asked for.

    None when anything asked for is not the client's (``invalid_scope``).
    """
    if not set(scope_to_list(requested) or []) <= set(scope_to_list(client.scope) or []):
        return None
    return client.get_allowed_scope(requested)


def machine_family(client):
    """The standing family ``client``'s tokens share (``standing_machine_family``)."""
    return standing_machine_family(
        client_id=client.client_id, organization_id=client.organization_id
    )


def machine_token(client, scope: str, family=None) -> dict:
    """A client-credentials token of ``client``'s own organization, in its standing family.

    ``scope`` comes from ``machine_scope``; ``family`` from ``machine_family``,
    found now when not given. Issuing one writes nothing once the standing
    family exists.
    """
    if family is None:
        family = machine_family(client)
    token, _ = issue_tokens(
        client=client,
        user=None,
        scope=scope,
        organization_id=client.organization_id,
        family=family,
    )
    return token


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 section 4.4 for partner and platform services; only the client's own scopes."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH

    def validate_token_request(self):
        """Refuse any scope the client was not given (``invalid_scope``)."""
        super().validate_token_request()
        scope = machine_scope(self.request.client, self.request.payload.scope)
        if scope is None:
            raise InvalidScopeError()
        self.request.scope = scope

    def create_token_response(self):
        """A machine token: ``hub`` and ``org`` of the client, no refresh token."""
        token = machine_token(self.request.client, self.request.scope)
        return 200, token, self.TOKEN_RESPONSE_HEADER

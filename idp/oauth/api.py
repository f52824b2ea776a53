"""Partner API credentials: partner owners manage their confidential OAuth clients."""

from __future__ import annotations

from flask.views import MethodView

from idp.api_inputs import Blueprint
from idp.auth.bearer import current_actor, require_auth
from idp.oauth import clients as service
from idp.oauth.schemas import (
    ClientSchema,
    ClientWithSecretSchema,
    CreateClientSchema,
    RotateSecretSchema,
)
from idp.openapi import ACCOUNT_NO_LONGER_ACTS, problem_responses

blp = Blueprint(
    "oauth_clients",
    __name__,
    url_prefix="/v1",
    description="Partner API credentials (OAuth client credentials); secrets are shown once.",
)


def _with_secret(client, secret: str) -> dict:
    return {
        "client_id": client.client_id,
        "client_secret": secret,
        "token_endpoint_auth_method": "client_secret_basic",
        "name": client.name,
        "redirect_uris": client.redirect_uris,
        "scope": client.scope,
        "created_at": client.created_at,
        "secret_rotated_at": client.secret_rotated_at,
        "previous_secret_valid_until": client.previous_secret_valid_until,
    }


@blp.route("/partners/<partner_id>/oauth-clients")
class PartnerClients(MethodView):
    """The partner's clients."""

    @require_auth
    @blp.arguments(CreateClientSchema)
    @blp.response(201, ClientWithSecretSchema)
    @blp.doc(
        **problem_responses(
            r401=ACCOUNT_NO_LONGER_ACTS,
            r409=("The partner has its maximum of clients", service.TooManyClients),
            r422=(
                "Invalid input, a redirect URI that cannot be matched safely, or a scope "
                "partners cannot have",
                service.InvalidRedirectUri,
                service.ScopeNotAllowed,
            ),
        )
    )
    def post(self, body, partner_id):
        """Create a client; the response is the only time its secret is shown."""
        client, secret = service.create_partner_client(current_actor(), partner_id, **body)
        return _with_secret(client, secret)

    @require_auth
    @blp.response(200, ClientSchema(many=True))
    def get(self, partner_id):
        """List the partner's clients (without secrets)."""
        return service.list_partner_clients(current_actor(), partner_id)


@blp.route("/partners/<partner_id>/oauth-clients/<client_id>")
class PartnerClient(MethodView):
    """One client of the partner."""

    @require_auth
    @blp.response(204)
    def delete(self, partner_id, client_id):
        """Delete the client and revoke its tokens."""
        service.delete_partner_client(current_actor(), partner_id, client_id)


@blp.route("/partners/<partner_id>/oauth-clients/<client_id>/secret")
class PartnerClientSecret(MethodView):
    """A client's secret."""

    @require_auth
    @blp.arguments(RotateSecretSchema, required=False)
    @blp.response(201, ClientWithSecretSchema)
    @blp.doc(**problem_responses(r401=ACCOUNT_NO_LONGER_ACTS))
    def post(self, body, partner_id, client_id):
        """Rotate the secret; the new one is shown once.

        The old one stops working at once, or keeps working beside the new one
        for ``previous_secret_expires_in`` seconds (up to 7 days) so that the
        services using it can move to the new one without downtime.
        """
        client, secret = service.rotate_partner_client_secret(
            current_actor(), partner_id, client_id, body.get("previous_secret_expires_in", 0)
        )
        return _with_secret(client, secret)


@blp.route("/partners/<partner_id>/oauth-clients/<client_id>/previous-secret")
class PartnerClientPreviousSecret(MethodView):
    """The secret a rotation replaced, while its grace period lasts."""

    @require_auth
    @blp.response(204)
    def delete(self, partner_id, client_id):
        """End the previous secret's grace period now: only the current secret works.

        Ending it when there is none (or its period is over) changes nothing.
        """
        service.expire_partner_client_previous_secret(current_actor(), partner_id, client_id)

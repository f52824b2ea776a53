"""Grant and consent-link endpoints of the Partner API and the Client API."""

from __future__ import annotations

from flask.views import MethodView

from idp.api_inputs import Blueprint
from idp.auth.bearer import current_actor, require_auth
from idp.consent import links, service
from idp.consent.schemas import ConsentLinkArgs, ConsentLinkSchema, GrantListArgs, GrantSchema
from idp.openapi import problem_responses

blp = Blueprint(
    "consent",
    __name__,
    url_prefix="/v1",
    description="Consent grants: what clients let partners do, and revoking it.",
)


# A client's roles may all read and revoke its grants (and no machine acts for a client).
ALREADY_REVOKED = problem_responses(
    every_role_may=True, r403=("The grant is revoked already", "grant_revoked")
)
CLIENT_READS = problem_responses(every_role_may=True)


@blp.route("/partners/<partner_id>/grants")
class PartnerGrants(MethodView):
    """The grants a partner holds."""

    @require_auth
    @blp.arguments(GrantListArgs, location="query")
    @blp.response(200, GrantSchema(many=True))
    def get(self, args, partner_id):
        """Grants the partner holds from its clients."""
        return service.list_grants(current_actor(), "partner", partner_id, **args)


@blp.route("/clients/<client_id>/grants")
class ClientGrants(MethodView):
    """The grants a client gave."""

    @require_auth
    @blp.arguments(GrantListArgs, location="query")
    @blp.response(200, GrantSchema(many=True))
    @blp.doc(**CLIENT_READS)
    def get(self, args, client_id):
        """Grants the client gave to partners."""
        return service.list_grants(current_actor(), "client", client_id, **args)


@blp.route("/clients/<client_id>/grants/<grant_id>")
class ClientGrant(MethodView):
    """One grant of a client."""

    @require_auth
    @blp.response(204)
    @blp.doc(**ALREADY_REVOKED)
    def delete(self, client_id, grant_id):
        """Revoke a whole grant now, with every key the partner generated under it."""
        service.revoke_grant(current_actor(), client_id, grant_id)


@blp.route("/clients/<client_id>/grants/<grant_id>/channels/<channel_id>")
class ClientGrantChannel(MethodView):
    """One channel of a client's grant."""

    @require_auth
    @blp.response(204)
    @blp.doc(**ALREADY_REVOKED)
    def delete(self, client_id, grant_id, channel_id):
        """Take one channel out of a grant now, with the partner's keys on it."""
        service.revoke_grant_channel(current_actor(), client_id, grant_id, channel_id)


@blp.route("/partners/<partner_id>/consent-links")
class ConsentLinks(MethodView):
    """A partner's consent links."""

    @require_auth
    @blp.arguments(ConsentLinkArgs)
    @blp.response(201, ConsentLinkSchema)
    def post(self, body, partner_id):
        """A short link to send a client: it opens the consent screen of the partner's client."""
        link = links.create_consent_link(current_actor(), partner_id, body)
        return {"url": links.link_url(link), "expires_at": link.expires_at}

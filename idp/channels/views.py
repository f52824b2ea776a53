"""The account structure for the hubs and partners' servers, and the provisioning endpoints."""

from __future__ import annotations

from flask.views import MethodView

from idp.api_inputs import Blueprint
from idp.auth.bearer import current_actor, require_auth
from idp.channels import listing, service
from idp.channels.numbers import InvalidPhoneNumber
from idp.channels.schemas import (
    ChannelCreateArgs,
    ChannelPageSchema,
    ChannelRowSchema,
    ClientChannelArgs,
    ClientChannelDetailSchema,
    ClientPageSchema,
    PartnerChannelArgs,
    PartnerChannelDetailSchema,
    PartnerClientArgs,
    StatusChangeArgs,
    WabaCreateArgs,
    WabaSchema,
    WabaVerificationArgs,
)
from idp.openapi import problem_responses

blp = Blueprint(
    "channels",
    __name__,
    url_prefix="/v1",
    description=(
        "Clients, WhatsApp Business Accounts and numbers as partners and clients see them; "
        "registering numbers and their status (platform provisioning, channels:write)."
    ),
)

# The client's roles may all read its WABAs and numbers (and no machine acts for a client).
CLIENT_READS = problem_responses(every_role_may=True)


@blp.route("/partners/<partner_id>/clients")
class PartnerClients(MethodView):
    @require_auth
    @blp.arguments(PartnerClientArgs, location="query")
    @blp.response(200, ClientPageSchema)
    def get(self, args, partner_id):
        """Clients the partner onboarded or holds a grant from, with grant state and counts."""
        return listing.partner_clients(current_actor(), partner_id, **args)


@blp.route("/partners/<partner_id>/channels")
class PartnerChannels(MethodView):
    @require_auth
    @blp.arguments(PartnerChannelArgs, location="query")
    @blp.response(200, ChannelPageSchema)
    def get(self, args, partner_id):
        """Every number of the partner's clients, one row each."""
        return listing.partner_channels(current_actor(), partner_id, **args)


@blp.route("/partners/<partner_id>/channels/<channel_id>")
class PartnerChannel(MethodView):
    @require_auth
    @blp.response(200, PartnerChannelDetailSchema)
    def get(self, partner_id, channel_id):
        """One number's full status: history, WABA verification, grant, key, who may act."""
        return listing.partner_channel_detail(current_actor(), partner_id, channel_id)


@blp.route("/clients/<client_id>/wabas")
class ClientWabas(MethodView):
    @require_auth
    @blp.response(200, WabaSchema(many=True))
    @blp.doc(**CLIENT_READS)
    def get(self, client_id):
        """The client's WhatsApp Business Accounts with their numbers."""
        return listing.client_wabas(current_actor(), client_id)

    @require_auth
    @blp.arguments(WabaCreateArgs)
    @blp.response(201, WabaSchema)
    def post(self, args, client_id):
        """Register a WABA for the client (provisioning service only)."""
        return service.create_waba(current_actor(), client_id, **args)


@blp.route("/clients/<client_id>/channels")
class ClientChannels(MethodView):
    @require_auth
    @blp.arguments(ClientChannelArgs, location="query")
    @blp.response(200, ChannelPageSchema)
    @blp.doc(**CLIENT_READS)
    def get(self, args, client_id):
        """The client's numbers, one row each."""
        return listing.client_channels(current_actor(), client_id, **args)


@blp.route("/clients/<client_id>/channels/<channel_id>")
class ClientChannel(MethodView):
    @require_auth
    @blp.response(200, ClientChannelDetailSchema)
    @blp.doc(**CLIENT_READS)
    def get(self, client_id, channel_id):
        """One of the client's numbers with its history and the partners granted it."""
        return listing.client_channel_detail(current_actor(), client_id, channel_id)


@blp.route("/wabas/<waba_id>/verification")
class WabaVerification(MethodView):
    @require_auth
    @blp.arguments(WabaVerificationArgs)
    @blp.response(200, WabaSchema)
    def post(self, args, waba_id):
        """Record the WABA's business verification state (provisioning service only)."""
        return service.set_waba_verification(current_actor(), waba_id, **args)


@blp.route("/wabas/<waba_id>/channels")
class WabaChannels(MethodView):
    @require_auth
    @blp.arguments(ChannelCreateArgs)
    @blp.response(201, ChannelRowSchema)
    @blp.doc(
        **problem_responses(
            r409=("Another channel holds the number", service.NumberInUse),
            r422=("Invalid input, or not a phone number", InvalidPhoneNumber),
        )
    )
    def post(self, args, waba_id):
        """Register a number (normalized to E.164); 409 while another channel holds it."""
        return service.create_channel(current_actor(), waba_id, **args)


@blp.route("/channels/<channel_id>/status")
class ChannelStatus(MethodView):
    @require_auth
    @blp.arguments(StatusChangeArgs)
    @blp.response(200, ChannelRowSchema)
    @blp.doc(
        **problem_responses(
            r409=(
                "Not a move the lifecycle allows (illegal_transition, with current_status "
                "and allowed), or another change came first (status_changed)",
                service.IllegalTransition,
                service.StatusChangedMeanwhile,
            )
        )
    )
    def post(self, args, channel_id):
        """Move the number along its lifecycle; 409 lists the allowed statuses."""
        return service.change_status(current_actor(), channel_id, args["status"], args["reason"])

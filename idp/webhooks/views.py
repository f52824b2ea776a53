"""Partner webhook endpoints of the Partner API: the URL, its secret, and the deliveries."""

from __future__ import annotations

from flask.views import MethodView

from idp.api_inputs import Blueprint
from idp.auth.bearer import current_actor, require_auth
from idp.errors import Forbidden, NotFound
from idp.openapi import ACCOUNT_NO_LONGER_ACTS, problem_responses
from idp.webhooks import service
from idp.webhooks.schemas import (
    AttemptListArgs,
    AttemptPageSchema,
    EndpointArgs,
    EndpointSchema,
    EndpointWithSecretSchema,
    RedeliverySchema,
)

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/v1",
    description="Partner webhooks: where events go, the signing secret, and every delivery.",
)


NO_ENDPOINT_404 = (
    "No such partner for the caller, or no webhook URL is set",
    NotFound,
    service.NoWebhookEndpoint,
)
NO_ENDPOINT = problem_responses(r404=NO_ENDPOINT_404)


def _with_secret(endpoint, secret):
    fields = ("url", "secret_created_at", "created_at", "updated_at")
    return {name: getattr(endpoint, name) for name in fields} | {"secret": secret}


@blp.route("/partners/<partner_id>/webhook")
class PartnerWebhook(MethodView):
    @require_auth
    @blp.response(200, EndpointSchema)
    @blp.doc(**NO_ENDPOINT)
    def get(self, partner_id):
        """The partner's webhook URL (the secret is never shown again)."""
        return service.get_endpoint(current_actor(), partner_id)

    @require_auth
    @blp.arguments(EndpointArgs)
    @blp.response(200, EndpointWithSecretSchema)
    @blp.doc(
        **problem_responses(
            r401=ACCOUNT_NO_LONGER_ACTS,
            r409=("Another change of the URL came first", service.EndpointSetMeanwhile),
            r422=("Invalid input, or a URL events cannot be sent to", service.InvalidWebhookUrl),
        )
    )
    def put(self, args, partner_id):
        """Set the webhook URL; the first time, the answer carries the signing secret."""
        endpoint, secret = service.set_endpoint(current_actor(), partner_id, args["url"])
        return _with_secret(endpoint, secret)

    @require_auth
    @blp.response(204)
    @blp.doc(**NO_ENDPOINT)
    def delete(self, partner_id):
        """Stop sending events to the partner."""
        service.delete_endpoint(current_actor(), partner_id)


@blp.route("/partners/<partner_id>/webhook/rotate-secret")
class PartnerWebhookSecret(MethodView):
    @require_auth
    @blp.response(200, EndpointWithSecretSchema)
    @blp.doc(**problem_responses(r401=ACCOUNT_NO_LONGER_ACTS, r404=NO_ENDPOINT_404))
    def post(self, partner_id):
        """Replace the signing secret at once; the answer carries the new one."""
        endpoint, secret = service.rotate_secret(current_actor(), partner_id)
        return _with_secret(endpoint, secret)


@blp.route("/partners/<partner_id>/webhook-deliveries")
class PartnerWebhookDeliveries(MethodView):
    @require_auth
    @blp.arguments(AttemptListArgs, location="query")
    @blp.response(200, AttemptPageSchema)
    def get(self, args, partner_id):
        """Delivery attempts to the partner's endpoint with their HTTP status, newest first."""
        return service.list_attempts(current_actor(), partner_id, args["limit"], args["cursor"])


@blp.route("/partners/<partner_id>/webhook-deliveries/<attempt_id>/redeliver")
class PartnerWebhookRedelivery(MethodView):
    @require_auth
    @blp.response(202, RedeliverySchema)
    @blp.doc(
        **problem_responses(
            r403=(
                "The caller may not manage the partner's webhooks, or the client no longer "
                "shares the event's number with the partner",
                Forbidden,
                service.EventNoLongerShared,
            )
        )
    )
    def post(self, partner_id, attempt_id):
        """Send the event of this delivery again (same webhook-id), outside the ordered stream."""
        message = service.redeliver(current_actor(), partner_id, attempt_id)
        return message

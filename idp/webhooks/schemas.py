"""Input and output schemas of the partner webhook endpoints (the secret only when created)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from idp.channels.cursor import DEFAULT_LIMIT, MAX_LIMIT
from idp.timeutil import Timestamp


class EndpointArgs(Schema):
    """Body of setting the webhook URL."""

    url = fields.String(required=True, validate=validate.Length(min=8, max=2000))


class EndpointSchema(Schema):
    """A partner's webhook endpoint, without its secret."""

    url = fields.String()
    secret_created_at = Timestamp()
    created_at = Timestamp()
    updated_at = Timestamp()


class EndpointWithSecretSchema(EndpointSchema):
    """The one response that carries the signing secret (first URL, or a rotation)."""

    secret = fields.String(
        allow_none=True,
        metadata={"description": "Standard Webhooks signing secret (whsec_...), shown only here."},
    )


class AttemptListArgs(Schema):
    """Query of the delivery listing."""

    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = fields.String(load_default=None)


class AttemptSchema(Schema):
    """One delivery attempt and what the endpoint answered."""

    id = fields.String()
    event_id = fields.String(metadata={"description": "The webhook-id header of the event."})
    event_type = fields.String()
    url = fields.String()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()
    created_at = Timestamp()


class AttemptPageSchema(Schema):
    """A page of delivery attempts, newest first."""

    items = fields.List(fields.Nested(AttemptSchema))
    next_cursor = fields.String(allow_none=True)


class RedeliverySchema(Schema):
    """A queued redelivery."""

    event_id = fields.Function(
        lambda m: (m.payload or {}).get("event_id"), metadata={"type": "string"}
    )
    status = fields.String()

"""Input and output schemas of the API-key endpoints (the key itself only on creation)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from idp.timeutil import Timestamp


class CreateKeySchema(Schema):
    """Body of a key generation; earlier keys keep working for the grace period, if any."""

    grace_period_seconds = fields.Integer(
        strict=True,
        load_default=None,
        validate=validate.Range(min=0, max=86400),
        metadata={"description": "Seconds the channel's earlier keys keep working (<= 24 h)."},
    )


class CreatedKeySchema(Schema):
    """The one response that carries the key text."""

    id = fields.String()
    api_key = fields.String(metadata={"description": "Shown only in this response."})
    channel_id = fields.String()
    created_at = Timestamp()


class CreatorSchema(Schema):
    """Who generated a key."""

    type = fields.String(attribute="created_by_type")
    id = fields.String(attribute="created_by_id")


class KeySchema(Schema):
    """A key as listed: never the secret."""

    id = fields.String()
    prefix = fields.String()
    last_four = fields.String()
    channel_id = fields.String()
    partner_id = fields.String(allow_none=True)
    created_by = fields.Function(
        lambda key: CreatorSchema().dump(key),
        metadata={
            "type": "object",
            "description": "Who generated the key.",
            "properties": {"type": {"type": "string"}, "id": {"type": "string", "nullable": True}},
        },
    )
    created_at = Timestamp()
    expires_at = Timestamp(allow_none=True)
    revoked_at = Timestamp(allow_none=True)
    revoked_reason = fields.String(allow_none=True)


class KeyIdentitySchema(Schema):
    """What the gateway learns about a valid key."""

    channel_id = fields.String()
    client_id = fields.String()
    partner_id = fields.String(allow_none=True)

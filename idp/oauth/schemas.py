"""Input and output schemas of the Partner API credentials endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from idp.api_inputs import Text
from idp.oauth.clients import MAX_PREVIOUS_SECRET_SECONDS
from idp.timeutil import Timestamp


class CreateClientSchema(Schema):
    """A new partner client: a name, optional exact redirect URIs and scopes."""

    name = Text(required=True, max_length=200)
    redirect_uris = fields.List(
        fields.String(validate=validate.Length(min=1, max=2000)),
        load_default=list,
        validate=validate.Length(max=10),
    )
    scope = fields.String(
        load_default=None,
        validate=validate.Length(max=1000),
        metadata={"description": "Space-separated; defaults to every partner scope."},
    )


class RotateSecretSchema(Schema):
    """A rotation: how long the secret it replaces keeps working beside the new one."""

    previous_secret_expires_in = fields.Integer(
        strict=True,
        load_default=0,
        validate=validate.Range(min=0, max=MAX_PREVIOUS_SECRET_SECONDS),
        metadata={
            "description": "Seconds the current secret keeps working after the rotation "
            "(at most 7 days; 0, the default, ends it at once). A previous secret still "
            "in its grace period is replaced: only one is kept."
        },
    )


class ClientSchema(Schema):
    """A partner client as listed (never with its secret)."""

    client_id = fields.String()
    name = fields.String()
    redirect_uris = fields.List(fields.String())
    scope = fields.String()
    created_at = Timestamp()
    secret_rotated_at = Timestamp(allow_none=True)
    previous_secret_expires_at = Timestamp(
        allow_none=True,
        attribute="previous_secret_valid_until",
        metadata={
            "description": "Until when the secret the last rotation replaced still works; "
            "null when it no longer does."
        },
    )


class ClientWithSecretSchema(ClientSchema):
    """The one response that shows a client secret: creation or rotation."""

    client_secret = fields.String()
    token_endpoint_auth_method = fields.String()

"""Input and output schemas of the account API (passwords exist only on inputs)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class SignupIn(Schema):
    """A client sign-up request."""

    email = fields.String(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, validate=validate.Length(max=1024), load_only=True)
    business_name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class PasswordResetIn(Schema):
    """A request for a password-reset link."""

    email = fields.String(required=True, validate=validate.Length(max=320))


class AcceptedOut(Schema):
    """The same answer whatever the address: look in the mailbox."""

    status = fields.String(required=True, metadata={"example": "accepted"})
    detail = fields.String(required=True)

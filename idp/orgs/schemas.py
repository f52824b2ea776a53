"""Input and output schemas of the partner invitation API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from idp.timeutil import Timestamp
from policies.roles import ROLES_BY_HUB


class InvitationIn(Schema):
    """Whom to invite, and as what."""

    email = fields.String(required=True, validate=validate.Length(max=320))
    role = fields.String(required=True, validate=validate.OneOf(ROLES_BY_HUB["partner"]))


class InvitationOut(Schema):
    """A pending invitation (its link is only ever in the email)."""

    id = fields.String(required=True, metadata={"example": "inv_3k9x..."})
    partner_id = fields.String(required=True, attribute="organization_id")
    email = fields.String(required=True)
    role = fields.String(required=True)
    invited_by_id = fields.String(allow_none=True)
    created_at = Timestamp(required=True)
    expires_at = Timestamp(required=True)

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


class MemberOut(Schema):
    """One member of an organization: the membership, and whose it is."""

    id = fields.String(
        required=True, attribute="membership.id", metadata={"example": "mem_7f2q..."}
    )
    organization_id = fields.String(required=True, attribute="membership.organization_id")
    user_id = fields.String(required=True, attribute="membership.user_id")
    email = fields.String(required=True, attribute="user.email")
    name = fields.String(allow_none=True, attribute="user.name")
    role = fields.String(required=True, attribute="membership.role")
    account_status = fields.String(
        required=True,
        attribute="user.status",
        metadata={"description": "``active``, ``disabled``, or ``email_conflict`` (held)."},
    )
    joined_at = Timestamp(required=True, attribute="membership.created_at")


class MemberPageOut(Schema):
    """A page of members, longest-standing first."""

    items = fields.List(fields.Nested(MemberOut), required=True)
    next_cursor = fields.String(allow_none=True)


class MemberRoleIn(Schema):
    """The role to give a partner's member."""

    role = fields.String(required=True, validate=validate.OneOf(ROLES_BY_HUB["partner"]))

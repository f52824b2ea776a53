"""Input and output shapes of the support API."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow import ValidationError as SchemaError

from idp.api_inputs import Text
from idp.support.paging import DEFAULT_LIMIT, MAX_LIMIT
from idp.timeutil import Timestamp


class QueryArgs(Schema):
    """Query-string arguments; an unknown one is an error, not silently ignored."""

    class Meta:
        unknown = RAISE


class AccountSearchArgs(QueryArgs):
    """``GET /v1/support/accounts``: exactly one of email, email_prefix or id."""

    email = fields.String(validate=validate.Length(min=1, max=320))
    email_prefix = fields.String(validate=validate.Length(min=2, max=320))
    id = fields.String(validate=validate.Length(min=1, max=40))
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, MAX_LIMIT))
    cursor = fields.String(validate=validate.Length(max=1000))

    @validates_schema
    def _one_criterion(self, data, **kwargs):
        given = [k for k in ("email", "email_prefix", "id") if data.get(k)]
        if len(given) != 1:
            raise SchemaError("Give exactly one of email, email_prefix or id.", "email")


class ListArgs(QueryArgs):
    """Paging of a listing."""

    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, MAX_LIMIT))
    cursor = fields.String(validate=validate.Length(max=1000))


class ConflictListArgs(ListArgs):
    """``GET /v1/support/email-conflicts``."""

    state = fields.String(load_default="open", validate=validate.OneOf(["open", "resolved", "all"]))


class SupportActionIn(Schema):
    """Every support action names its ticket and says why."""

    ticket = Text(required=True, max_length=120)
    reason = Text(required=True, min_length=3, max_length=1000, multiline=True)


class EmailReassignmentIn(SupportActionIn):
    """``POST /v1/support/accounts/{user_id}/email``."""

    email = fields.String(required=True, validate=validate.Length(min=3, max=320))


class MembershipOut(Schema):
    """An account's role in one organization."""

    organization_id = fields.String()
    organization_name = fields.String(attribute="organization.name")
    organization_kind = fields.String(attribute="organization.kind")
    role = fields.String()


class AccountOut(Schema):
    """An account as support sees it (never a password hash or a session stamp)."""

    id = fields.String()
    email = fields.String()
    hub = fields.String()
    status = fields.String()
    email_verified = fields.Boolean()
    name = fields.String()
    created_at = Timestamp()
    last_login_at = Timestamp(allow_none=True)
    memberships = fields.List(fields.Nested(MembershipOut))


class AccountPageOut(Schema):
    """One page of accounts."""

    items = fields.List(fields.Nested(AccountOut))
    next_cursor = fields.String(allow_none=True)


class ConflictOut(Schema):
    """One email conflict, with the held account and the account using the address now."""

    id = fields.String(attribute="conflict.id")
    email = fields.String(attribute="conflict.email")
    state = fields.String()
    source = fields.String(attribute="conflict.source")
    created_at = Timestamp(attribute="conflict.created_at")
    resolved_at = Timestamp(attribute="conflict.resolved_at", allow_none=True)
    held = fields.Nested(AccountOut)
    holder = fields.Nested(AccountOut, allow_none=True)


class ConflictPageOut(Schema):
    """One page of email conflicts."""

    items = fields.List(fields.Nested(ConflictOut))
    next_cursor = fields.String(allow_none=True)

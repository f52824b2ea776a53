"""Input and output schemas of the account-structure and provisioning endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from idp.api_inputs import Text
from idp.channels.cursor import DEFAULT_LIMIT, MAX_LIMIT
from idp.timeutil import Timestamp, isoformat
from policies.channels import ACCOUNT_MODES, CHANNEL_STATUSES, WABA_VERIFICATION_STATES


class PageArgs(Schema):
    """Paging of a listing: at most ``limit`` rows after the opaque ``cursor``."""

    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = fields.String(load_default=None, validate=validate.Length(max=400))


class PartnerClientArgs(PageArgs):
    """Query of a partner's client list."""

    q = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Part of the client's name."},
    )
    grant_state = fields.String(
        load_default=None,
        validate=validate.OneOf(("active", "none")),
        metadata={"description": "active: the client granted you something now; none: it has not."},
    )


class ClientChannelArgs(PageArgs):
    """Query of a number listing."""

    status = fields.String(load_default=None, validate=validate.OneOf(CHANNEL_STATUSES))
    number = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "Digits the E.164 number contains."},
    )


class PartnerChannelArgs(ClientChannelArgs):
    """Query of a partner's number listing."""

    client_id = fields.String(load_default=None, validate=validate.Length(max=40))


class CounterpartSchema(Schema):
    """The id and name of a related organization or WABA."""

    id = fields.String()
    name = fields.String()


class WabaRefSchema(CounterpartSchema):
    """The WABA a number belongs to."""

    verification_state = fields.String()


class ChannelRowSchema(Schema):
    """One number, as listed."""

    id = fields.String()
    phone_number = fields.String(metadata={"description": "E.164"})
    display_name = fields.String()
    waba = fields.Nested(WabaRefSchema)
    client = fields.Nested(CounterpartSchema)
    status = fields.String()
    account_mode = fields.String(metadata={"description": "sandbox or live"})
    created_at = Timestamp()
    status_changed_at = Timestamp()
    terminated_at = Timestamp(allow_none=True)


class ChannelPageSchema(Schema):
    """A page of numbers."""

    items = fields.List(fields.Nested(ChannelRowSchema))
    next_cursor = fields.String(allow_none=True)


TIMESTAMP_OR_NULL = {"type": "string", "format": "date-time", "nullable": True}


class WholeNested(fields.Nested):
    """A nested schema that is dumped for a missing object too (its fields say what then)."""

    def _serialize(self, nested_obj, attr, obj, **kwargs):
        return self.schema.dump(nested_obj)


class GrantSummarySchema(Schema):
    """The state of a partner's grant from a client."""

    state = fields.Function(
        lambda g: "none" if g is None else ("active" if g.revoked_at is None else "revoked"),
        metadata={"type": "string", "enum": ["none", "active", "revoked"]},
    )
    scopes = fields.Function(
        lambda g: sorted(g.scopes) if g else [],
        metadata={"type": "array", "items": {"type": "string"}},
    )
    channel_count = fields.Function(
        lambda g: len(g.channel_ids) if g else 0, metadata={"type": "integer"}
    )
    granted_at = fields.Function(
        lambda g: isoformat(g.created_at) if g else None, metadata=TIMESTAMP_OR_NULL
    )
    revoked_at = fields.Function(
        lambda g: isoformat(g.revoked_at) if g else None, metadata=TIMESTAMP_OR_NULL
    )


class ClientRowSchema(Schema):
    """One client in a partner's list."""

    id = fields.String(attribute="client.id")
    name = fields.String(attribute="client.name")
    onboarded_at = Timestamp(attribute="client.created_at")
    onboarded_by_you = fields.Boolean()
    grant = WholeNested(GrantSummarySchema)
    channel_counts = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "By status."}
    )


class ClientPageSchema(Schema):
    """A page of clients."""

    items = fields.List(fields.Nested(ClientRowSchema))
    next_cursor = fields.String(allow_none=True)


class StatusChangeSchema(Schema):
    """One step of a number's status history."""

    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    reason = fields.String(allow_none=True)
    changed_at = Timestamp(attribute="created_at")


class PartnerGrantStateSchema(Schema):
    """The partner's grant as it bears on one number."""

    state = fields.String()
    scopes = fields.List(fields.String())
    covers_channel = fields.Boolean()


class ChannelDetailBase(Schema):
    """A number's full status: the row, its history, its key and who may act."""

    channel = fields.Nested(ChannelRowSchema)
    history = fields.List(fields.Nested(StatusChangeSchema))
    has_api_key = fields.Boolean(metadata={"description": "Whether a working key exists."})
    may_act = fields.Dict(keys=fields.String(), values=fields.Raw())


class PartnerChannelDetailSchema(ChannelDetailBase):
    """ "Show details" of a number for a partner."""

    grant = fields.Nested(PartnerGrantStateSchema)


class GrantedPartnerSchema(Schema):
    """A partner whose active grant covers the number."""

    partner_id = fields.String()
    partner_name = fields.String()
    scopes = fields.List(fields.String())


class ClientChannelDetailSchema(ChannelDetailBase):
    """A number's details for its own client."""

    granted_partners = fields.List(fields.Nested(GrantedPartnerSchema))


class ChannelBriefSchema(Schema):
    """A number inside its WABA."""

    id = fields.String()
    phone_number = fields.String()
    display_name = fields.String()
    status = fields.String()
    account_mode = fields.String()


class WabaSchema(Schema):
    """A WhatsApp Business Account with its numbers."""

    id = fields.String()
    name = fields.String()
    client_id = fields.String()
    verification_state = fields.String()
    created_at = Timestamp()
    channels = fields.List(fields.Nested(ChannelBriefSchema))


class WabaCreateArgs(Schema):
    """Body of registering a WABA for a client."""

    name = Text(required=True, max_length=200)
    verification_state = fields.String(
        load_default="unverified", validate=validate.OneOf(WABA_VERIFICATION_STATES)
    )


class WabaVerificationArgs(Schema):
    """Body of recording a WABA's business verification state."""

    verification_state = fields.String(
        required=True, validate=validate.OneOf(WABA_VERIFICATION_STATES)
    )


class ChannelCreateArgs(Schema):
    """Body of registering a number on a WABA."""

    phone_number = fields.String(
        required=True,
        validate=validate.Length(min=3, max=32),
        metadata={"description": "E.164 (+14155550123), or national format with region."},
    )
    region = fields.String(
        load_default=None,
        validate=validate.Length(equal=2),
        metadata={"description": "ISO 3166 country for a national-format number."},
    )
    display_name = Text(required=True, max_length=200)
    account_mode = fields.String(load_default="sandbox", validate=validate.OneOf(ACCOUNT_MODES))


class StatusChangeArgs(Schema):
    """Body of a status change."""

    status = fields.String(required=True, validate=validate.OneOf(CHANNEL_STATUSES))
    reason = Text(load_default=None, max_length=500, multiline=True)

"""Input and output schemas of the grant and consent-link endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from idp.timeutil import Timestamp
from policies.consent import MAX_LINK_LIFETIME_SECONDS


class GrantListArgs(Schema):
    """Query of a grant listing."""

    include_revoked = fields.Boolean(load_default=False)


class GrantSchema(Schema):
    """A grant as its client or partner sees it."""

    id = fields.String()
    client = fields.String(attribute="client_id")
    client_name = fields.String(attribute="client.name")
    partner = fields.String(attribute="partner_id")
    partner_name = fields.String(attribute="partner.name")
    channels = fields.List(fields.String(), attribute="channel_ids")
    scope = fields.String()
    created_at = Timestamp()
    updated_at = Timestamp()
    revoked_at = Timestamp(allow_none=True)


class ConsentLinkArgs(Schema):
    """Body of a consent-link request: the partner's own client and redirect URI."""

    client_id = fields.String(required=True, validate=validate.Length(min=1, max=80))
    redirect_uri = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    state = fields.String(
        required=True,
        # RFC 6749 appendix A.5: state is VSCHAR, printable ASCII; it is echoed back as sent.
        validate=[
            validate.Length(min=1, max=500),
            validate.Regexp(r"^[\x20-\x7e]+$", error="Must be printable ASCII characters."),
        ],
    )
    scope = fields.String(load_default=None, validate=validate.Length(max=500))
    email = fields.Email(load_default=None, metadata={"description": "Prefilled on sign-up/login."})
    code_challenge = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9._~-]{43,128}$"),
        metadata={"description": "PKCE S256 challenge; the partner keeps the verifier."},
    )
    code_challenge_method = fields.String(load_default="S256", validate=validate.OneOf(["S256"]))
    expires_in = fields.Integer(
        load_default=7 * 24 * 3600,
        validate=validate.Range(min=60, max=MAX_LINK_LIFETIME_SECONDS),
        metadata={"description": "Seconds the link stays valid (30 days at most)."},
    )


class ConsentLinkSchema(Schema):
    """A created consent link."""

    url = fields.String()
    expires_at = Timestamp()

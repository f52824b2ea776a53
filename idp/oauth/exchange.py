"""RFC 8693 token exchange: switching partner without a password prompt."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oidc.core.grants.util import is_openid_scope

from idp.accounts.models import User
from idp.api_inputs import printable_ascii
from idp.auth.bearer import api_audience
from idp.extensions import db
from idp.oauth.grants import CLIENT_AUTH, IssuingGrant
from idp.oauth.id_tokens import family_sign_in, renewed_id_token
from idp.oauth.issuance import user_with_roles
from idp.oauth.models import TOKEN_EXCHANGE, TokenFamily
from idp.oauth.tokens import open_family
from idp.oauth.tokens_view import parse_access_token
from idp.timeutil import utcnow

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
_ACCOUNT_KEY_SHARE = (
    db.select(User.id)
    .where(User.id == db.bindparam("user_id"))
    .with_for_update(read=True, key_share=True)
)


class InvalidTargetError(OAuth2Error):
    """RFC 8693 section 2.2.2: the requested target (organization) is not allowed."""

    error = "invalid_target"


class TokenExchangeGrant(IssuingGrant, grants.BaseGrant, grants.TokenEndpointMixin):
    """RFC 8693 token exchange, used to switch partner without a password prompt.

    The hub frontend sends its current access token as ``subject_token``
    (``subject_token_type`` access_token) and the target ``organization``;
    a user who is a member of it gets a new token family for it.
    """

    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH

    def token_target(self):
        """The organization switched to; a new family that ends when the login's family does.

        Switching must not renew the refresh tokens' absolute lifetime: only
        typing the password again starts a new one. The new family names the
        one it was exchanged from and its browser login, so that revoking that
        family or logging out ends it too (``idp.oauth.revocation``).
        """
        # The account's row first, as every path that ends logins locks it: the
        # organization switched to is written now, and the new family's foreign
        # key needs the row's KEY SHARE lock anyway.
        user = self.request.user
        chosen_before = user.last_organization_id
        if chosen_before != self.request.target_organization_id:
            user.last_organization_id = self.request.target_organization_id
            db.session.flush()
        db.session.execute(_ACCOUNT_KEY_SHARE, {"user_id": user.id})
        # The roles again, now the row is held: a membership ended or a role taken by
        # an owner who held the row first (``idp.orgs.members``) is seen here; one that
        # comes later waits for this family and then revokes it.
        _, roles = user_with_roles(user.id, self.request.target_organization_id)
        if not roles:
            user.last_organization_id = chosen_before
            raise InvalidTargetError("You are not a member of this organization.")
        self.request.idp_roles = roles
        # FOR SHARE until this request commits: a revocation of the subject family
        # waits for the new family, then finds it and revokes it too; one that came
        # first is seen here.
        subject_family = db.session.get(
            TokenFamily,
            self.request.subject_family.id,
            with_for_update={"read": True},
            populate_existing=True,
        )
        if subject_family is None or not subject_family.is_active:
            # The token endpoint commits what an error leaves (a revocation): not this.
            user.last_organization_id = chosen_before
            raise InvalidGrantError("The subject token is not active.")
        remaining = (subject_family.expires_at - utcnow()).total_seconds()
        family = open_family(
            client_id=self.request.client.client_id,
            user_id=subject_family.user_id,
            organization_id=self.request.target_organization_id,
            lifetime=max(1, int(remaining)),
            parent=subject_family,
            sign_in=family_sign_in(subject_family),
        )
        return self.request.target_organization_id, family

    def validate_token_request(self):
        """Check the subject token (ours, live, same client) and the membership in the target."""
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError()
        form = self.request.form
        subject_token = form.get("subject_token")
        target = form.get("organization")
        if not subject_token or form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError("Send 'subject_token' of type access_token.")
        if not target:
            raise InvalidRequestError("Missing 'organization'.")
        self._refuse_what_cannot_be_honoured(form)
        if len(target) > 80 or not printable_ascii(target):
            raise InvalidTargetError("You are not a member of this organization.")
        subject = parse_access_token(subject_token)
        if subject is None or subject.is_revoked() or subject.is_expired():
            raise InvalidGrantError("The subject token is not active.")
        if subject.client_id != client.client_id or subject.user_id is None:
            raise InvalidGrantError("The subject token was not issued to this client for a user.")
        user, roles = user_with_roles(subject.user_id, target)
        if user is None or not user.is_active:
            raise InvalidGrantError("The account can no longer use this token.")
        if not roles:
            raise InvalidTargetError("You are not a member of this organization.")
        self.request.idp_roles = roles
        self.request.client = client
        self.request.user = user
        self.request.target_organization_id = target
        self.request.subject_family = subject.family
        self.request.scope = subject.claims.get("scope", "")

    @staticmethod
    def _refuse_what_cannot_be_honoured(form) -> None:
        """RFC 8693 parameters this exchange cannot honour get an error, not a quiet token.

        Delegation (``actor_token``, section 2.1) is not offered: the switch acts as
        the subject itself, so a client asking for an ``act`` claim must learn it gets
        none. The token is for this service's API only: another ``audience`` or
        ``resource`` is ``invalid_target`` (section 2.2.2), and the only type issued is
        an access token.
        """
        if form.get("actor_token") or form.get("actor_token_type"):
            raise InvalidRequestError("Delegation ('actor_token') is not supported.")
        for name in ("audience", "resource"):
            value = form.get(name)
            if value and value != api_audience():
                raise InvalidTargetError(f"Tokens are for this service's API only ('{name}').")
        requested = form.get("requested_token_type")
        if requested and requested != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError("Only an access token can be requested.")

    def create_token_response(self):
        """A new family for the target organization (remembered as the last one used).

        Of an ``openid`` login, with a new ID token naming that organization, as a
        refresh gives one (``idp.oauth.id_tokens``): the hub's idea of who is signed
        in, and for which partner, follows the switch at once.
        """
        user = self.request.user
        token = self.generate_token(user=user, scope=self.request.scope, include_refresh_token=True)
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        if is_openid_scope(self.request.scope):
            token["id_token"] = renewed_id_token(
                client=self.request.client, user=user, token=token, family=self.request.token_family
            )
        return 200, token, self.TOKEN_RESPONSE_HEADER

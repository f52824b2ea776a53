"""Authlib grants, subclassed: only their storage and policy hooks are ours.

* ``AuthorizationCodeGrant`` with PKCE S256 required for every client and
  OpenID Connect ID tokens (``IdTokenExtension``);
* ``RefreshTokenGrant`` rotating the refresh token on every use; a rotated
  token presented again revokes its whole family; an ``openid`` login gets a
  new ID token with each refresh (``id_tokens``);
* ``ClientCredentialsGrant`` (in ``machine_grant``) for partner and platform services;
* ``TokenExchangeGrant`` (RFC 8693, in ``exchange``) for switching partner.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.grants.util import is_openid_scope
from flask import current_app
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.ids import PREFIXES, new_time_ordered_id
from idp.login.session import login_amr, session_id
from idp.oauth.code_store import claim_code, insert_code, nonce_used, stored_code
from idp.oauth.id_tokens import renewed_id_token, sign_id_token
from idp.oauth.issuance import TOKEN_RESPONSE_EXTRAS, issue_tokens, user_with_roles
from idp.oauth.models import (
    RefreshToken,
    TokenFamily,
    family_id_of_code,
    sha256_hex,
)
from idp.oauth.revocation import revoke_family
from idp.timeutil import utcnow

CODE_BYTES = 36  # 48 URL-safe characters, as long as Authlib's codes
CLIENT_AUTH = ["client_secret_basic", "client_secret_post", "none"]
CONFIDENTIAL_AUTH = ["client_secret_basic", "client_secret_post"]


def claim_once(column, row_id: str) -> bool:
    """Set the timestamp ``column`` of one row if still empty; True for the one caller that did.

    A conditional UPDATE, so that of two concurrent requests (on any instance)
    exactly one wins.
    """
    model = column.class_
    updated = db.session.execute(
        db.update(model)
        .where(model.id == row_id, column.is_(None))
        .values({column.key: utcnow()})
        .execution_options(synchronize_session=False)
    ).rowcount
    return updated == 1


class IssuingGrant:
    """Token generation through ``issue_tokens`` (our claims, our families).

    Each grant says, in ``token_target()``, which organization the tokens are
    for and which existing family (if any) they join, and in ``new_family_id()``
    the id of the family it opens otherwise (None: a new random one).
    """

    def new_family_id(self) -> str | None:
        """The id of the family these tokens open when they join none; None for a random one."""
        return None

    def new_family_login(self) -> str | None:
        """The browser login the family these tokens open belongs to; None for none."""
        return None

    def new_family_sign_in(self) -> tuple[int, list[str]] | None:
        """When and how the person of the family these tokens open signed in; None for none."""
        return None

    def refresh_scope(self) -> str | None:
        """The scope of the new refresh token; None for the access token's."""
        return None

    def generate_token(
        self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True
    ):
        """Authlib's token generator hook: mint our access token (and refresh token)."""
        organization_id, family = self.token_target()
        token, family = issue_tokens(
            client=self.request.client,
            user=user,
            scope=scope or "",
            organization_id=organization_id,
            family=family,
            include_refresh_token=include_refresh_token,
            # Read with the user by the grant's own check, for the same organization.
            roles=self.request.idp_roles if user is not None else None,
            new_family_id=self.new_family_id(),
            login_session_id=self.new_family_login(),
            sign_in=self.new_family_sign_in(),
            refresh_scope=self.refresh_scope(),
        )
        self.request.token_family = family
        return token


class S256CodeChallenge(CodeChallenge):
    """PKCE (RFC 7636) required on every authorization request, S256 only (RFC 9700 2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        """Refuse a missing challenge and any method but S256 (``plain`` included)."""
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE with S256 is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be 'S256'.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        """Every client, confidential ones too, must present the verifier."""
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class IdTokenExtension(OpenIDCode):
    """OpenID Connect Core 3.1: an ID token from our key ring, with ``nonce``.

    Signed with the client's registered ``id_token_signed_response_alg`` (ES256
    unless it registered RS256), as OpenID Connect Core 3.1.3.7 has the client check.
    """

    def exists_nonce(self, nonce, request):
        """Never asked here: the code's INSERT refuses a nonce this client used before.

        A UNIQUE index on (client, nonce) decides, so that of two simultaneous
        requests with one nonce only one gets a code, with no lookup beforehand
        (``AuthorizationCodeGrant.save_authorization_code``).
        """
        return False

    def encode_id_token(self, token, request):
        """Sign the ID token for the user and client of this code exchange, with its nonce."""
        code = request.authorization_code
        return sign_id_token(
            client=request.client,
            user=request.user,
            token=token,
            family_id=request.token_family.id,
            organization_id=code.organization_id,
            auth_time=code.auth_time,
            amr=code.get_amr(),
            nonce=code.nonce,
        )


class AuthorizationCodeGrant(IssuingGrant, grants.AuthorizationCodeGrant):
    """RFC 6749 section 4.1 with single-use, short-lived, hashed codes."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH

    def token_target(self):
        """The organization chosen at authorization; a new family."""
        code = self.request.authorization_code
        return code.organization_id, None

    def new_family_id(self) -> str:
        """The family is named after the code, so that a replay of the code finds it."""
        return family_id_of_code(self.request.authorization_code.id)

    def new_family_login(self) -> str | None:
        """The browser login the code was issued in: logging out of it ends the family."""
        return self.request.authorization_code.login_session_id

    def new_family_sign_in(self) -> tuple[int, list[str]]:
        """The code's sign-in: every ID token the family is renewed with carries it."""
        code = self.request.authorization_code
        return code.auth_time, code.get_amr()

    def generate_authorization_code(self) -> str:
        """288 random bits, URL-safe: one read of the OS's randomness, not one per character."""
        return secrets.token_urlsafe(CODE_BYTES)

    def issue_code(self, user) -> dict:
        """RFC 6749 section 4.1.2: store a new code for ``user``; return ``code`` and ``state``.

        Authlib's ``create_authorization_response`` without its redirect: the
        authorization endpoint sends them in the request's response mode.
        """
        self.request.user = user
        code = self.generate_authorization_code()
        self.save_authorization_code(code, self.request)
        return {"code": code, "state": self.request.payload.state or None}

    def save_authorization_code(self, code, request):
        """Store the code's hash with what the user decided (organization, handler context).

        One plain INSERT: nothing else in the request reads the row back, so it
        need not pass through the session's unit of work. A nonce the client used
        before fails it (the UNIQUE index); the transaction is rolled back and the
        client gets ``invalid_request`` at its (validated) redirect URI.
        """
        payload = request.payload.data
        now = utcnow()
        row = dict(
            id=new_time_ordered_id(PREFIXES["authorization_code"]),
            code_hash=sha256_hex(code),
            client_id=request.client.client_id,
            user_id=request.user.id,
            organization_id=getattr(request, "idp_organization_id", None),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            # Only an OpenID Connect request's nonce means anything (it goes into the ID
            # token), and only one that is there can be replayed.
            nonce=(payload.get("nonce") or None) if is_openid_scope(request.scope) else None,
            code_challenge=payload["code_challenge"],
            code_challenge_method=payload["code_challenge_method"],
            auth_time=getattr(request, "idp_auth_time", None) or int(time.time()),
            amr=login_amr(),
            context=getattr(request, "idp_context", None),
            login_session_id=session_id(),
            created_at=now,
            expires_at=now + timedelta(seconds=current_app.config["IDP_AUTH_CODE_TTL"]),
        )
        try:
            insert_code(row)
        except IntegrityError:
            db.session.rollback()
            if row["nonce"] is not None and nonce_used(row["client_id"], row["nonce"]):
                # OpenID Connect Core 3.1.2.1; Authlib's own wording for a replayed nonce.
                raise InvalidRequestError(
                    "Replay attack", redirect_uri=request.payload.redirect_uri
                ) from None
            raise

    def query_authorization_code(self, code, client):
        """Claim the code atomically; a used code revokes what it issued (RFC 6749 4.1.2).

        One conditional ``UPDATE ... RETURNING``: of two concurrent exchanges (on
        any instance) exactly one gets the row back. On PostgreSQL the same
        statement reads the code's user for ``authenticate_user``. A code whose
        browser login has ended since (logout, password change, support) is
        spent and gets nothing.
        """
        digest = sha256_hex(code)
        claim = claim_code(digest, client.client_id)
        if claim is None:
            self._revoke_what_a_replayed_code_issued(digest, client)
            return None
        self.request.idp_code_user = claim.user_and_roles
        if claim.code.expires_at <= utcnow() or not claim.login_open:
            return None
        return claim.code

    @staticmethod
    def _revoke_what_a_replayed_code_issued(digest: str, client) -> None:
        code = stored_code(digest, client.client_id)
        family = db.session.get(TokenFamily, code.issued_family_id) if code is not None else None
        if family is not None:
            revoke_family(family, "authorization_code_reused")

    def delete_authorization_code(self, authorization_code):
        """Codes are kept (used) to detect replays; nothing to write.

        The claim marked it used, and the family its exchange opened is named
        after it (``AuthorizationCode.issued_family_id``).
        """

    def authenticate_user(self, authorization_code):
        """The code's user, if the account may still log in (with their roles, for the token).

        A hub code names the organization the user signed in to; a membership ended
        since it was issued leaves the code worth nothing, as a refresh would find.
        """
        read_with_the_code = getattr(self.request, "idp_code_user", None)
        user, self.request.idp_roles = read_with_the_code or user_with_roles(
            authorization_code.user_id, authorization_code.organization_id
        )
        if user is None or not user.is_active:
            return None
        if (
            self.request.client.kind == "hub"
            and authorization_code.organization_id
            and not self.request.idp_roles
        ):
            return None
        return user

    def generate_token(self, user=None, scope=None, **kwargs):
        """Hub logins get user tokens; a partner app gets a machine token of its partner."""
        # A partner's consent app learns the grant; it never acts as the client's user.
        client = self.request.client
        if client.kind != "hub":
            organization_id = client.organization_id
            token, family = issue_tokens(
                client=client,
                user=None,
                scope=scope or "",
                organization_id=organization_id,
                new_family_id=self.new_family_id(),
            )
            self.request.token_family = family
            return token
        return super().generate_token(user=user, scope=scope, **kwargs)

    def create_token_response(self):
        """Issue the tokens, then merge the registered token response extras."""
        status, token, headers = super().create_token_response()
        for extra in TOKEN_RESPONSE_EXTRAS:
            token.update(extra(self.request.authorization_code) or {})
        return status, token, headers


_REFRESH_TOKEN = db.select(RefreshToken).where(RefreshToken.token_hash == db.bindparam("digest"))


class RefreshTokenGrant(IssuingGrant, grants.RefreshTokenGrant):
    """RFC 6749 section 6 with rotation; reuse of a rotated token revokes the family."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True

    def token_target(self):
        """The refresh token's family and its organization."""
        family = self.request.refresh_token.family
        return family.organization_id, family

    def refresh_scope(self) -> str:
        """The presented token's: a narrower access token asked for narrows only itself."""
        return self.request.refresh_token.scope

    def authenticate_refresh_token(self, refresh_token):
        """The stored token; a rotated one revokes its family (RFC 9700 4.14.2)."""
        row = db.session.scalar(_REFRESH_TOKEN, {"digest": sha256_hex(refresh_token)})
        if row is None or row.family is None:  # the family purged since the row was read
            return None
        if row.rotated_at is not None:
            revoke_family(row.family, "refresh_token_reused")
            return None
        if not row.family.is_active:
            return None
        return row

    def authenticate_user(self, refresh_token):
        """The family's user while active and still a member of the family's organization."""
        family = refresh_token.family
        user, roles = (
            user_with_roles(family.user_id, family.organization_id)
            if family.user_id
            else (None, [])
        )
        if user is None or not user.is_active:
            raise InvalidGrantError("The account can no longer use this token.")
        if family.organization_id and not roles:
            # Families exchanged from it are for other organizations: they stay.
            revoke_family(family, "membership_ended", exchanged=False)
            raise InvalidGrantError("The membership this token was issued for has ended.")
        self.request.idp_roles = roles
        return user

    def revoke_old_credential(self, refresh_token):
        """Rotate atomically: of two concurrent uses only one wins, the other revokes."""
        if not claim_once(RefreshToken.rotated_at, refresh_token.id):
            revoke_family(refresh_token.family, "refresh_token_reused")
            raise InvalidGrantError()

    def create_token_response(self):
        """Rotate and issue; a login with ``openid`` also gets a new ID token (OIDC Core 12.2).

        Whether it does is the refresh token's scope (the login's), not that
        of a narrower access token asked for; its claims follow the access token's.
        """
        status, token, headers = super().create_token_response()
        if is_openid_scope(self.request.refresh_token.scope):
            token["id_token"] = renewed_id_token(
                client=self.request.client,
                user=self.request.user,
                token=token,
                family=self.request.token_family,
            )
        return status, token, headers

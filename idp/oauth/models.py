"""OAuth clients, authorization codes, refresh tokens and the token families they belong to."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import scope_to_list
from sqlalchemy.orm import relationship

from idp.extensions import db
from idp.ids import PREFIXES
from idp.keys.models import SIGNING_ALGORITHMS
from idp.models import created_at_column, id_column, one_of
from idp.timeutil import utcnow

CLIENT_KINDS = ("hub", "partner", "platform")
CLIENT_HUBS = ("partner", "client", "support")
# The hub frontends are first-party public clients with fixed, well-known ids.
HUB_CLIENT_IDS = {"partner": "partner-hub", "client": "client-hub", "support": "support-console"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def family_id_of_code(code_id: str) -> str:
    """The id of the token family that the code ``code_id`` opens when it is exchanged."""
    code_prefix = f"{PREFIXES['authorization_code']}_"
    return f"{PREFIXES['token_family']}_{code_id.removeprefix(code_prefix)}"


def code_id_of_family(family_id: str) -> str:
    """The id of the code whose exchange opened family ``family_id``, were it so named.

    The inverse of ``family_id_of_code``; a family opened otherwise names no code.
    """
    family_prefix = f"{PREFIXES['token_family']}_"
    return f"{PREFIXES['authorization_code']}_{family_id.removeprefix(family_prefix)}"


def sha256_hex(value: str) -> str:
    """SHA-256 of a high-entropy secret (client secret, code, refresh token), hex encoded."""
    return hashlib.sha256(value.encode()).hexdigest()


def uri_registered(uri: str, registered: list[str] | None) -> bool:
    """Whether ``uri`` is exactly one of ``registered`` (compared as bytes: any text is safe)."""
    presented = uri.encode()
    return any(hmac.compare_digest(presented, r.encode()) for r in registered or [])


# The characters RFC 3986 lets a URI hold (unreserved, reserved and "%"), so that a
# registered URI is one the authorization endpoint can use: an IDN host goes in its
# punycode form, and nothing the endpoint refuses (a quote, a control character) gets in.
_URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def redirect_uri_allowed(uri: str) -> bool:
    """Whether a URI may be registered: https, or http on a loopback host (RFC 8252).

    No fragment, not even an empty one (RFC 6749 section 3.1.2), no user
    information (RFC 9110 section 4.2.4), no wildcard.
    """
    if not _URI_CHARACTERS.fullmatch(uri) or "#" in uri or "*" in uri:
        return False
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if not parts.netloc or "@" in parts.netloc:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


class TokenFamily(db.Model):
    """One login or client-credentials issuance and everything derived from it.

    Refresh-token rotation stays inside a family; revoking the family (reuse of a
    rotated refresh token, logout, password change, account disabled) makes every
    access token carrying its ``sid`` inactive at once, on every instance.
    A partner switch opens a family of its own that names the family it was
    exchanged from (``parent_id``); a hub login's families name the browser
    login their code was issued in (``login_session_id``). Revoking a family
    revokes the families exchanged from it; logging out revokes every family
    of that login (``idp.oauth.revocation``).
    """

    __tablename__ = "token_families"

    id = id_column()
    client_id = sa.Column(sa.String(80), nullable=False, index=True)
    user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=True, index=True)
    organization_id = sa.Column(sa.String(40), nullable=True)
    created_at = created_at_column()
    expires_at = sa.Column(sa.DateTime, nullable=False)
    revoked_at = sa.Column(sa.DateTime, nullable=True)
    revoked_reason = sa.Column(sa.String(80), nullable=True)
    # Read only among one user's families (the index on user_id finds them): no index.
    # No foreign keys: a family outlives the login session row, and may outlive its
    # parent's row (a family revoked alone, its membership ended, is purged first).
    # ON DELETE SET NULL would not help: the purge would rewrite live families, and
    # every reader already takes a login that is gone for one that has ended.
    parent_id = sa.Column(sa.String(40), nullable=True)
    login_session_id = sa.Column(sa.String(40), nullable=True)
    # When and how its person signed in (OpenID Connect's ``auth_time`` and ``amr``):
    # the code's at the exchange, the parent's at a switch, for every ID token the
    # family is renewed with. None for a machine's family, and for a login whose
    # sign-in was no longer known when these were added (migrations 0025, 0026).
    auth_time = sa.Column(sa.Integer, nullable=True)
    amr = sa.Column(sa.JSON, nullable=True)

    @property
    def is_active(self) -> bool:
        """Unrevoked and within its absolute lifetime."""
        return self.revoked_at is None and self.expires_at > utcnow()


class ClientRules(ClientMixin):
    """What a client may do, decided from its registration alone.

    Shared by the ``OAuthClient`` row and the immutable per-process snapshot of it
    (``idp.oauth.client_cache``), so both answer Authlib identically.
    """

    @property
    def is_public(self) -> bool:
        """Public clients (the hub frontends) cannot keep a secret and use PKCE alone."""
        return self.client_secret_hash is None

    # Authlib ClientMixin hooks (RFC 6749 section 2).

    def get_client_id(self) -> str:
        """The client identifier."""
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """No default: every authorization request names its redirect URI (RFC 9700 2.1)."""
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client may have; all of its scopes when none are asked."""
        allowed = scope_to_list(self.scope) or []
        if not scope:
            return " ".join(allowed)
        return " ".join(s for s in scope_to_list(scope) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match against a registered URI: no prefix, no wildcard."""
        return uri_registered(redirect_uri, self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        """Constant-time comparison of the presented secret's SHA-256 with the stored one.

        During a rotation's grace period the previous secret works too, until
        ``previous_secret_expires_at`` by the clock (not only until the row is
        read again). Both are compared whichever matches, and the expiry read
        either way, so the time taken tells nothing of which one did.
        """
        if self.client_secret_hash is None or not client_secret:
            return False
        presented = sha256_hex(client_secret)
        current = hmac.compare_digest(presented, self.client_secret_hash)
        if self.previous_secret_hash is None:
            return current
        previous = hmac.compare_digest(presented, self.previous_secret_hash)
        return current | (previous & (self.previous_secret_expires_at > utcnow()))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Public clients authenticate with ``none``; confidential ones with their secret."""
        if self.is_public:
            return method == "none"
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        """Only the authorization code flow exists here (no implicit)."""
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        """Whether this client may use ``grant_type`` at the token endpoint."""
        return grant_type in self.grant_types

    @property
    def login_hub(self) -> str:
        """Whose accounts sign in for this client: a hub frontend's own, else the Client Hub's.

        Partner apps ask clients for consent, so Client Hub users sign in for them.
        """
        return self.hub if self.kind == "hub" else "client"

    @property
    def grant_types(self) -> frozenset[str]:
        """Grants by kind: hubs log people in; partner and platform services get machine tokens."""
        if self.kind == "hub":
            return frozenset({"authorization_code", "refresh_token", TOKEN_EXCHANGE})
        grants = {"client_credentials"}
        if self.redirect_uris:
            # The consent flow: the code tells the partner's server what was granted.
            grants.add("authorization_code")
        return frozenset(grants)


class OAuthClient(db.Model, ClientRules):
    """A registered OAuth client.

    ``kind`` says who it is: ``hub`` (a first-party hub frontend, public, bound to
    ``hub``), ``partner`` (a partner's confidential service or consent app, owned by
    ``organization_id``), ``platform`` (our own services, e.g. provisioning).
    Only the SHA-256 of the secret is stored; public clients have none. After a
    rotation with a grace period, the SHA-256 of the secret it replaced is kept
    until the period ends (``previous_secret_expires_at``).
    """

    __tablename__ = "oauth_clients"
    __table_args__ = (
        one_of("kind", CLIENT_KINDS, "kind"),
        one_of("hub", CLIENT_HUBS, "hub"),
        one_of("id_token_signed_response_alg", SIGNING_ALGORITHMS, "id_token_signed_response_alg"),
        # A previous secret always has the end of its grace period (which every check reads).
        sa.CheckConstraint(
            "(previous_secret_hash IS NULL) = (previous_secret_expires_at IS NULL)",
            name="previous_secret",
        ),
    )

    client_id = sa.Column(sa.String(80), primary_key=True)
    client_secret_hash = sa.Column(sa.String(64), nullable=True)
    name = sa.Column(sa.String(200), nullable=False)
    kind = sa.Column(sa.String(16), nullable=False, index=True)
    hub = sa.Column(sa.String(16), nullable=False)
    organization_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=True, index=True
    )
    redirect_uris = sa.Column(sa.JSON, nullable=False, default=list)
    post_logout_redirect_uris = sa.Column(sa.JSON, nullable=False, default=list)
    scope = sa.Column(sa.Text, nullable=False, default="")
    # OpenID Connect Dynamic Client Registration 1.0 section 2: how its ID tokens are signed.
    id_token_signed_response_alg = sa.Column(
        sa.String(10), nullable=False, default="ES256", server_default="ES256"
    )
    created_at = created_at_column()
    secret_rotated_at = sa.Column(sa.DateTime, nullable=True)
    # The secret a rotation replaced, still working until its grace period ends
    # (both empty when there is none; only ever one).
    previous_secret_hash = sa.Column(sa.String(64), nullable=True)
    previous_secret_expires_at = sa.Column(sa.DateTime, nullable=True)
    deleted_at = sa.Column(sa.DateTime, nullable=True)

    @property
    def previous_secret_valid_until(self) -> datetime | None:
        """When the previous secret stops working, if it still works (never the secret)."""
        until = self.previous_secret_expires_at
        if self.previous_secret_hash is None or until is None or until <= utcnow():
            return None
        return until


TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


class AuthorizationCode(db.Model):
    """A single-use, short-lived authorization code; only its SHA-256 is stored.

    A replayed code revokes what it issued (RFC 6749 section 4.1.2): the
    family its exchange opened, found by ``issued_family_id``. ``context`` is
    filled by the client kind's authorization handler (the consent flow stores
    its grant id there).
    """

    __tablename__ = "oauth_authorization_codes"
    # A nonce a client used before is a replay: its second code is refused by the database.
    __table_args__ = (
        sa.Index("uq_oauth_authorization_codes_client_nonce", "client_id", "nonce", unique=True),
        # Deleting a family checks that no code names it: only old codes do (migration 0011).
        sa.Index(
            "ix_oauth_authorization_codes_family_id",
            "family_id",
            sqlite_where=sa.text("family_id IS NOT NULL"),
            postgresql_where=sa.text("family_id IS NOT NULL"),
        ),
    )

    id = id_column()
    code_hash = sa.Column(sa.String(64), nullable=False, unique=True)
    client_id = sa.Column(sa.String(80), sa.ForeignKey("oauth_clients.client_id"), nullable=False)
    user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=False, index=True)
    organization_id = sa.Column(sa.String(40), nullable=True)
    redirect_uri = sa.Column(sa.String(2000), nullable=False)
    scope = sa.Column(sa.Text, nullable=False, default="")
    nonce = sa.Column(sa.String(255), nullable=True)
    code_challenge = sa.Column(sa.String(128), nullable=False)
    code_challenge_method = sa.Column(sa.String(10), nullable=False)
    auth_time = sa.Column(sa.Integer, nullable=False)
    # How the login was proven (RFC 8176), e.g. ["pwd", "otp", "mfa"]; None: a password.
    amr = sa.Column(sa.JSON, nullable=True)
    context = sa.Column(sa.JSON, nullable=True)
    created_at = created_at_column()
    expires_at = sa.Column(sa.DateTime, nullable=False)
    used_at = sa.Column(sa.DateTime, nullable=True)
    # The browser login the code was issued in; a hub login's family inherits it.
    # No foreign key: a used code is kept longer than its login's row (``idp.janitor``),
    # and a key would need an index here written at every sign-in.
    login_session_id = sa.Column(sa.String(40), nullable=True)
    # Written by exchanges before families were named after their code; kept for their replays.
    family_id = sa.Column(sa.String(40), sa.ForeignKey("token_families.id"), nullable=True)

    @property
    def issued_family_id(self) -> str:
        """The id of the family this code's exchange opens (or opened).

        The code's own random part under the family prefix: a code is exchanged
        at most once, so the id is unique, and a replay finds the family from the
        code alone, with nothing written to the code at the exchange. Codes
        exchanged before this naming carry the family's id in ``family_id``.
        """
        return self.family_id or family_id_of_code(self.id)

    # Authlib AuthorizationCodeMixin / OpenID hooks.

    def get_redirect_uri(self) -> str:
        """The redirect URI the code was issued for."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """The granted scope."""
        return self.scope

    def get_nonce(self) -> str | None:
        """The OpenID Connect nonce of the authorization request."""
        return self.nonce

    def get_auth_time(self) -> int:
        """When the user authenticated (seconds since the epoch)."""
        return self.auth_time

    def get_acr(self) -> None:
        """No authentication context classes are distinguished."""
        return None

    def get_amr(self) -> list[str]:
        """How the user authenticated: a password, and a second step if one was asked."""
        return list(self.amr or ["pwd"])


class RefreshToken(db.Model):
    """One opaque refresh token of a family; rotated on use, only its SHA-256 stored."""

    __tablename__ = "oauth_refresh_tokens"

    id = id_column()
    token_hash = sa.Column(sa.String(64), nullable=False, unique=True)
    family_id = sa.Column(
        sa.String(40), sa.ForeignKey("token_families.id"), nullable=False, index=True
    )
    scope = sa.Column(sa.Text, nullable=False, default="")
    created_at = created_at_column()
    rotated_at = sa.Column(sa.DateTime, nullable=True)

    family = relationship("TokenFamily")

    def check_client(self, client) -> bool:
        """Whether the token was issued to ``client``."""
        return self.family.client_id == client.client_id

    def get_scope(self) -> str:
        """The scope granted to the family."""
        return self.scope

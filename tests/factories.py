"""Factories: valid objects in one call, with traits for the common states."""

from __future__ import annotations

import itertools

from idp.accounts.emails import normalize_email
from idp.accounts.models import User
from idp.accounts.passwords import hash_password
from idp.channels.models import Channel, Waba
from idp.extensions import db
from idp.mfa import totp
from idp.mfa.models import TwoStepSecret
from idp.oauth.tokens import mint_access_token, open_family
from idp.orgs.models import Membership, Organization
from idp.timeutil import utcnow

PASSWORD = "a-long-test-passphrase"
_HASH = None
_seq = itertools.count(1)
_numbers = itertools.count(5550100)


def password_hash() -> str:
    """One argon2id hash of ``PASSWORD``, computed once per run (hashing is slow on purpose)."""
    global _HASH
    if _HASH is None:
        _HASH = hash_password(PASSWORD)
    return _HASH


def make_org(kind: str, name: str | None = None, **kwargs) -> Organization:
    org = Organization.create(kind, name or f"{kind.title()} {next(_seq)}", **kwargs)
    db.session.add(org)
    db.session.flush()
    return org


def make_user(
    hub: str,
    org: Organization | None = None,
    role: str | None = None,
    *,
    email: str | None = None,
    status: str = "active",
    verified: bool = True,
) -> User:
    """A user of ``hub`` with ``PASSWORD``, member of ``org`` with ``role`` when given."""
    email = email or f"user{next(_seq)}@{hub}.example"
    user = User.create(
        email=email,
        email_normalized=normalize_email(email),
        hub=hub,
        name=email.split("@")[0],
        status=status,
        email_verified=verified,
        password_hash=password_hash(),
        password_changed_at=utcnow(),
    )
    db.session.add(user)
    db.session.flush()
    if org is not None:
        db.session.add(
            Membership.create(user, org, role or ("agent" if hub == "support" else "owner"))
        )
        db.session.flush()
    return user


def turn_on_two_step(user: User) -> str:
    """Give ``user`` an enabled authenticator secret, as a confirmed set-up leaves; the secret."""
    secret = totp.new_secret()
    sealed = totp.seal(secret, user.id)
    db.session.add(TwoStepSecret(user_id=user.id, sealed_secret=sealed, enabled_at=utcnow()))
    db.session.flush()
    return secret


def make_channel(
    client: Organization, status: str = "live", *, number: str | None = None
) -> Channel:
    """A channel (and its WABA when the client has none) in ``status``."""
    waba = db.session.scalar(db.select(Waba).where(Waba.client_id == client.id))
    if waba is None:
        waba = Waba.create(client, f"{client.name} WABA")
        db.session.add(waba)
        db.session.flush()  # Channel.create copies waba.client_id, set only by the flush
    channel = Channel.create(
        waba, number or f"+1415{next(_numbers):07d}", f"{client.name} line", status=status
    )
    db.session.add(channel)
    db.session.flush()
    return channel


def bearer_for(
    user: User | None = None,
    org: Organization | None = None,
    *,
    client_id: str = "test-client",
    scope: str = "openid",
    hub: str | None = None,
    roles: list[str] | None = None,
) -> dict:
    """Authorization header with a real signed access token for ``user`` acting in ``org``.

    Without a user it is a machine token (client credentials) of ``client_id``.
    """
    if roles is None and user is not None and org is not None:
        roles = [m.role for m in user.memberships if m.organization_id == org.id]
    family = open_family(
        client_id=client_id,
        user_id=user.id if user else None,
        organization_id=org.id if org else None,
        lifetime=3600,
    )
    db.session.commit()
    token, _ = mint_access_token(
        client_id=client_id,
        subject=user.id if user else client_id,
        family_id=family.id,
        hub=hub or (user.hub if user else (org.kind if org else "partner")),
        organization_id=org.id if org else None,
        roles=roles or [],
        scope=scope,
    )
    return {"Authorization": f"Bearer {token}"}


def sign_in(client, user_id: str, security_stamp: str) -> None:
    """Leave in ``client``'s cookie what a login leaves (``idp.login.session.login_user``).

    Opens the server-side login session too, so the cookie is live; needs an app context.
    """
    import secrets

    from idp.login.models import LoginSession

    session_id = secrets.token_urlsafe(24)
    db.session.add(LoginSession(id=session_id, user_id=user_id, created_at=utcnow()))
    db.session.commit()
    with client.session_transaction() as sess:
        sess["uid"], sess["stamp"], sess["sid"] = user_id, security_stamp, session_id

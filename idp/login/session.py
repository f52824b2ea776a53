"""The browser session: who is logged in, for how long, and how it ends.

The Flask session stores the user id, the account's ``security_stamp`` at
login, the login time and the id of a server-side ``LoginSession``. Changing
the stamp (password change, email reassignment, "end all sessions") or
disabling the account logs every browser out at its next request, on every
instance; logging out ends the ``LoginSession``, so a copied cookie dies too.

Two clocks end a login. The cookie's signature expires after
``IDP_SESSION_IDLE_TIMEOUT`` without a request (it slides with activity), and
the ``LoginSession`` row stops counting ``IDP_SESSION_MAX_AGE`` after the
login however active the browser is: then the user types their password
again. Support staff act on other people's accounts, so their logins end
sooner, on the same two clocks: ``IDP_SUPPORT_SESSION_IDLE_TIMEOUT`` since the
cookie was last signed and ``IDP_SUPPORT_SESSION_MAX_AGE`` since the login,
and their cookie expires after their idle timeout rather than the general one.
A login refused on either clock is ended on the server by the request that
finds it so, as a sign-out would.

A login also records the device and address it started from and when it was
last used (``last_seen_at``), for its owner's page of signed-in browsers. The
last use is written by the request that reads the login, at most every
``LAST_SEEN_EVERY`` seconds (every ``REFRESH_AFTER`` for support staff, whose
idle timeout is short): a page view writes nothing otherwise, and the API,
whose callers send no session cookie, never.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app, request, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.login.device import client_address, describe_device
from idp.login.models import LoginSession
from idp.login.writes import write_login
from idp.orgs.models import Membership, Organization
from idp.ratelimits import remote_address
from idp.timeutil import utcnow

_USER = "uid"
_STAMP = "stamp"
_AUTH_TIME = "auth_time"
_SESSION_ID = "sid"
_HUB = "hub"  # the hub of the account logged in: support cookies expire sooner
_AMR = "amr"  # how the login was proven (RFC 8176): ["pwd"], or with a second step
PASSWORD_ONLY = ("pwd",)
_CACHE = "idp.session_user"  # per request, never shared between requests
_ORGANIZATIONS = "idp.session_organizations"  # read with the session's user, per request
# Pending authorization requests survive the session renewal at login.
PENDING_PREFIX = "authz:"
# A live session's cookie is re-signed at most this often (seconds) to slide its expiry.
REFRESH_AFTER = 60
# A login's last use is written at most this often (seconds), support staff's every REFRESH_AFTER.
LAST_SEEN_EVERY = 300
# Called as (previous user id, previous login id, user id, new login id) when a
# login replaces this browser's earlier one: the token families follow or end,
# and the earlier login is ended before its families are touched.
LOGIN_REPLACED: list[Callable[[str, str, str, str], None]] = []


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, signed only when there is something new to sign.

    API clients and the gateway never send the session cookie: their session
    is empty, and no signer is built for them. A live session's cookie is
    re-signed when a page writes to the session, and otherwise at most once
    every ``REFRESH_AFTER`` seconds to slide its expiry (Flask would re-sign
    and send it on every request).
    """

    def open_session(self, app, request):
        """An empty session without a cookie; otherwise the cookie's data and when it was signed."""
        value = request.cookies.get(self.get_cookie_name(app))
        if app.secret_key and not value:
            return self.session_class()
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        session = self.session_class(data)
        session.signed_at = signed_at.timestamp()
        return session

    def should_set_cookie(self, app, session) -> bool:
        """When written to, or when a permanent session's expiry is due to slide."""
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        signed_at = getattr(session, "signed_at", None)
        return signed_at is None or time.time() - signed_at >= REFRESH_AFTER

    def get_expiration_time(self, app, session) -> datetime | None:
        """A support login's cookie expires after the support idle timeout, others' after theirs."""
        if session.permanent and session.get(_HUB) == "support":
            idle = app.config["IDP_SUPPORT_SESSION_IDLE_TIMEOUT"]
            return datetime.now(UTC) + timedelta(seconds=idle)
        return super().get_expiration_time(app, session)


def current_user() -> User | None:
    """The logged-in, active user of this browser, or None (a stale stamp means logged out).

    The first call of a request reads the login, before the request writes
    anything: a login that no longer counts is ended then, and one in use
    has its last use written when due, each committed at once.
    """
    if _CACHE in request.environ:
        return request.environ[_CACHE]
    user = None
    organization_ids = frozenset()
    user_id = session.get(_USER)
    if user_id:
        login_id = session.get(_SESSION_ID)
        found, organization_ids, last_seen_at = _live_user(user_id, login_id)
        stamp = session.get(_STAMP, "")
        if (
            found is not None
            and found.is_active
            and hmac.compare_digest(found.security_stamp.encode(), str(stamp).encode())
        ):
            user = found
            if last_seen_at is None or last_seen_at <= utcnow() - _mark_every(user.hub):
                _mark_seen(login_id)
        else:
            logout_user()
            db.session.commit()  # ended on the server too: the page stops listing it
    request.environ[_CACHE] = user
    request.environ[_ORGANIZATIONS] = organization_ids if user is not None else frozenset()
    return user


def current_organization_ids() -> frozenset[str]:
    """The ids of the logged-in user's organizations of their own hub; empty if nobody is.

    Read in the same query as the session's user, so that an authorization
    request needs one query for both.
    """
    if _ORGANIZATIONS not in request.environ:  # logged in or out during this request
        user = current_user()
        request.environ[_ORGANIZATIONS] = (
            frozenset(db.session.scalars(_ORGANIZATION_IDS, {"user_id": user.id, "hub": user.hub}))
            if user is not None
            else frozenset()
        )
    return request.environ[_ORGANIZATIONS]


# One row per membership, the organization's id only where it is of the user's own hub.
_LIVE_USER = (
    sa.select(User, Organization.id, LoginSession.created_at, LoginSession.last_seen_at)
    .join(LoginSession, LoginSession.user_id == User.id)
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(
        Organization,
        (Organization.id == Membership.organization_id) & (Organization.kind == User.hub),
    )
    .where(
        User.id == sa.bindparam("user_id"),
        LoginSession.id == sa.bindparam("login_session_id"),
        LoginSession.ended_at.is_(None),
        LoginSession.created_at > sa.bindparam("started_after"),
    )
)
_ORGANIZATION_IDS = (
    sa.select(Membership.organization_id)
    .join(Organization, Membership.organization_id == Organization.id)
    .where(Membership.user_id == sa.bindparam("user_id"), Organization.kind == sa.bindparam("hub"))
)


def _live_user(
    user_id: str, login_session_id: str | None
) -> tuple[User | None, frozenset[str], datetime | None]:
    """The user, if the server still holds this login open for them, their organizations,
    and when the login was last marked as used.

    One query for them all. A login older than ``IDP_SESSION_MAX_AGE`` is no
    longer open, nor one of support staff past their own, shorter limits.
    """
    if not login_session_id or not isinstance(login_session_id, str):
        return None, frozenset(), None
    max_age = timedelta(seconds=current_app.config["IDP_SESSION_MAX_AGE"])
    rows = db.session.execute(
        _LIVE_USER,
        {
            "user_id": user_id,
            "login_session_id": login_session_id,
            "started_after": utcnow() - max_age,
        },
    ).all()
    if not rows:
        return None, frozenset(), None
    user, _, created_at, last_seen_at = rows[0]
    if user.hub == "support" and _past_support_limits(created_at):
        return None, frozenset(), None
    return user, frozenset(row[1] for row in rows if row[1] is not None), last_seen_at


def _mark_every(hub: str) -> timedelta:
    """How often a login of ``hub`` in use has its last use written."""
    return timedelta(seconds=REFRESH_AFTER if hub == "support" else LAST_SEEN_EVERY)


def _mark_seen(login_session_id: str) -> None:
    """Write that the login is in use now, in a transaction of its own (nothing else is pending).

    Locks the one login row for a moment, holding no other lock, so it waits
    for no path that ends logins in their order, nor they for it long.
    """
    db.session.execute(
        sa.update(LoginSession)
        .where(LoginSession.id == login_session_id, LoginSession.ended_at.is_(None))
        .values(last_seen_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _past_support_limits(created_at) -> bool:
    """Whether a support login was idle too long (its cookie signed too long ago) or is too old."""
    config = current_app.config
    signed_at = getattr(session, "signed_at", None)
    if signed_at is not None and (
        time.time() - signed_at > config["IDP_SUPPORT_SESSION_IDLE_TIMEOUT"]
    ):
        return True
    return created_at <= utcnow() - login_max_age("support")


def login_max_age(hub: str) -> timedelta:
    """How long after its start a login of an account of ``hub`` counts, however active."""
    config = current_app.config
    key = "IDP_SUPPORT_SESSION_MAX_AGE" if hub == "support" else "IDP_SESSION_MAX_AGE"
    return timedelta(seconds=config[key])


def login_idle_limit(hub: str) -> timedelta:
    """How long after its last written use a login of ``hub`` may still be live.

    Its idle timeout, plus the most by which the written use trails the
    browser's last request; a login unused for longer is signed out.
    """
    config = current_app.config
    key = "IDP_SUPPORT_SESSION_IDLE_TIMEOUT" if hub == "support" else "IDP_SESSION_IDLE_TIMEOUT"
    return timedelta(seconds=config[key]) + _mark_every(hub)


def end_logins(*, user_id: str | None = None, login_session_id: str | None = None) -> None:
    """End the open server-side logins of ``user_id``, or the one ``login_session_id``.

    A code issued in an ended login is exchanged for nothing
    (``idp.oauth.code_store``): end the login before revoking what it issued,
    so that an exchange racing the end either finished first (its family is
    found) or waits for this transaction and finds the login ended.
    The caller commits.
    """
    if user_id:
        which = LoginSession.user_id == user_id
    elif login_session_id:
        which = LoginSession.id == login_session_id
    else:
        return
    db.session.execute(
        sa.update(LoginSession)
        .where(which, LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def auth_time() -> int | None:
    """When the current session's user typed the password (seconds since the epoch)."""
    return session.get(_AUTH_TIME) if current_user() is not None else None


def session_id() -> str | None:
    """A random id of this login session (renewed at every login)."""
    return session.get(_SESSION_ID)


def signed_login() -> tuple[str, str] | None:
    """(user id, login id) the signed cookie names, whether or not that login still counts.

    For signing out: a login past ``IDP_SESSION_MAX_AGE`` no longer logs
    anyone in, but what it issued should still end with it.
    """
    user_id, login_id = session.get(_USER), session.get(_SESSION_ID)
    if isinstance(user_id, str) and isinstance(login_id, str):
        return user_id, login_id
    return None


def login_amr() -> list[str]:
    """How this browser's login was proven (RFC 8176 ``amr``): ``["pwd"]`` unless a second
    step was taken too."""
    amr = session.get(_AMR)
    return list(amr) if isinstance(amr, list) and amr else list(PASSWORD_ONLY)


def login_user(
    user: User,
    amr: tuple[str, ...] | list[str] | None = None,
    *,
    event: AuditEvent | None = None,
) -> None:
    """Start a fresh session for ``user`` (nothing of the old one is kept); caller commits.

    ``amr`` says how the person proved the account (``idp.oauth.id_tokens``
    puts it in ID tokens), now. Without it, a fresh login of the account
    already signed in here (a password change, signing other browsers out)
    keeps the earlier login's proof, and with a proof beyond the password typed
    now (a second step) the time it was given: ``auth_time`` never dates a
    second step later than it was taken. Any other login says a password. ``event``, an
    audit event not yet in the session, is written with the login
    (``idp.login.writes``), the account's row first.
    """
    pending = {k: v for k, v in session.items() if k.startswith(PENDING_PREFIX)}
    previous = signed_login()
    proven_at = int(time.time())
    if amr is None:
        same_person = previous is not None and previous[0] == user.id
        amr = login_amr() if same_person else PASSWORD_ONLY
        earlier = session.get(_AUTH_TIME)
        if tuple(amr) != PASSWORD_ONLY and isinstance(earlier, int):
            proven_at = earlier
    login_id = secrets.token_urlsafe(24)
    now = utcnow()
    login = LoginSession(
        id=login_id,
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        device=describe_device(request.headers.get("User-Agent")),
        ip_address=client_address(remote_address()),
    )
    write_login(user, login, event)
    if previous is not None:  # the hooks end the earlier login, in their order
        for replaced in LOGIN_REPLACED:
            replaced(*previous, user.id, login_id)
    end_logins(login_session_id=session.get(_SESSION_ID))
    session.clear()
    session.update(pending)
    session[_SESSION_ID] = login_id
    session[_USER] = user.id
    session[_STAMP] = user.security_stamp
    session[_AUTH_TIME] = proven_at
    session[_HUB] = user.hub
    session[_AMR] = list(amr)
    session.permanent = True
    request.environ[_CACHE] = user
    request.environ.pop(_ORGANIZATIONS, None)


def logout_user() -> None:
    """End this browser's session, here and on the server; the caller commits."""
    end_logins(login_session_id=session.get(_SESSION_ID))
    session.clear()
    request.environ[_CACHE] = None
    request.environ.pop(_ORGANIZATIONS, None)

"""A signed-in person's own open logins: listed, and ended from here with the password.

The page lists every login of the account that still counts: a
``LoginSession`` not ended, younger than ``IDP_SESSION_MAX_AGE``
(``IDP_SUPPORT_SESSION_MAX_AGE`` for support staff) and used within the idle
timeout (``idp.login.session.login_idle_limit``). Each shows the device and
address it started from, when it started and when it was last used, newest
first, and this browser's is marked. A login from before devices were
recorded shows none of them. A login is named on the page by a keyed digest
of its id (``handle``), never by the id its cookie carries.

Ending one other login, or every other one, needs the current password,
checked exactly as a login checks it (``idp.login.service.check_password``,
behind the failed-login throttle), so a stolen session alone cannot sign its
owner out elsewhere. A login that is no longer open is named before the
password is checked, and nothing is counted then. An ended login loses its
token families, as signing out in that browser would
(``idp.oauth.revocation.revoke_login_families``). Typing the password starts
a fresh login in this browser, as every login does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from idp.accounts.models import User
from idp.accounts.password_change import CurrentPasswordRefused
from idp.audit.service import record_event
from idp.config import keyed_digest, subkey
from idp.errors import InvalidInput
from idp.extensions import db
from idp.login.models import LoginSession
from idp.login.service import check_password, forgive
from idp.login.session import login_idle_limit, login_max_age, login_user, session_id
from idp.oauth.models import TokenFamily
from idp.oauth.revocation import revoke_families_outside_login, revoke_login_families
from idp.timeutil import utcnow

_HANDLE_LABEL = b"idp login handles on the sessions page"
OTHERS = "others"  # the button that ends every login but this browser's
GONE = "That browser is signed out already."


@dataclass(frozen=True)
class OpenLogin:
    """One open login of the account, as the page shows it."""

    handle: str
    started_at: datetime
    current: bool
    device: str | None  # None: not recorded (a login from before they were)
    ip_address: str | None
    last_seen_at: datetime | None


def _handle(login_id: str) -> str:
    return keyed_digest(subkey(current_app.config, _HANDLE_LABEL), login_id)[:32]


def _open(user: User) -> list[sa.Row]:
    """The account's logins that still count, newest first: id, start, device, address, use."""
    now = utcnow()
    return db.session.execute(
        sa.select(
            LoginSession.id,
            LoginSession.created_at,
            LoginSession.device,
            LoginSession.ip_address,
            LoginSession.last_seen_at,
        )
        .where(
            LoginSession.user_id == user.id,
            LoginSession.ended_at.is_(None),
            LoginSession.created_at > now - login_max_age(user.hub),
            sa.or_(
                LoginSession.last_seen_at.is_(None),
                LoginSession.last_seen_at > now - login_idle_limit(user.hub),
            ),
        )
        .order_by(LoginSession.created_at.desc(), LoginSession.id)
    ).all()


def open_logins(user: User) -> list[OpenLogin]:
    """The account's logins that still count, newest first, this browser's marked."""
    here = session_id()
    return [
        OpenLogin(
            handle=_handle(row.id),
            started_at=row.created_at,
            current=row.id == here,
            device=row.device,
            ip_address=row.ip_address,
            last_seen_at=row.last_seen_at,
        )
        for row in _open(user)
    ]


def other_logins(user: User) -> list[str]:
    """The ids of the account's open logins but this browser's."""
    here = session_id()
    return [row.id for row in _open(user) if row.id != here]


def unlisted_apps(user: User) -> int:
    """How many live token families of the account no listed login holds.

    Those of logins that no longer count (idle or too old), whose apps' refresh
    tokens live on: only "every other browser" ends them, short of a new password.
    """
    listed = [row.id for row in _open(user)]
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(TokenFamily)
        .where(
            TokenFamily.user_id == user.id,
            TokenFamily.revoked_at.is_(None),
            TokenFamily.expires_at > utcnow(),
            sa.or_(
                TokenFamily.login_session_id.is_(None),
                TokenFamily.login_session_id.not_in(listed),
            ),
        )
    )


def _chosen(user: User, which: str) -> list[str]:
    """The ids of the other open logins ``which`` names (``OTHERS``: all), or raise.

    ``OTHERS`` with no other login listed still ends the apps no listed login holds.
    """
    ids = other_logins(user)
    chosen = ids if which == OTHERS else [i for i in ids if _handle(i) == which]
    if which == OTHERS and not chosen and unlisted_apps(user):
        return chosen
    if not chosen:
        message = "No other browser is signed in." if which == OTHERS else GONE
        raise InvalidInput(message, fields={"login": [message]})
    return chosen


def end_other_logins(user: User, which: str, current_password: str, *, address: str) -> int:
    """End ``which`` (a login's handle, or ``OTHERS``) once the password proves the account.

    Returns how many logins ended. Raises ``InvalidInput`` (no password, or no
    such open login: nothing checked or written) or ``CurrentPasswordRefused``
    (recorded as ``login.failed``). On success the session is committed and
    this browser holds a fresh login.
    """
    if not current_password:
        message = "Type your password."
        raise InvalidInput(message, fields={"current_password": [message]})
    chosen = _chosen(user, which)
    checked = check_password(user, user.email_normalized, current_password, address)
    if checked.refusal is not None:
        raise CurrentPasswordRefused(checked.refusal)
    forgive(checked, user.email_normalized, address)
    ended = end_logins(user, None if which == OTHERS else chosen, via="current_password")
    db.session.commit()
    return ended


def end_logins(user: User, login_ids: list[str] | None, *, via: str) -> int:
    """End these logins of ``user`` with their token families, or (None) everything but this
    browser's login; how many logins ended. The caller commits.

    This browser gets a fresh login first (its families follow it), which also
    locks the account's row, as every path that ends logins does: the logins
    read after it include one a sign-in committed meanwhile. With None, every
    token family not issued in this browser's login ends too, also those of
    logins that no longer count (idle or too old) while their apps' refresh
    tokens live on. Recorded as ``account.sessions_ended``, ``after.via``
    saying what proved the person.
    """
    login_user(user)
    everything_else = login_ids is None
    if everything_else:
        login_ids = other_logins(user)
    for login_id in login_ids:
        revoke_login_families(user.id, login_id, "ended_by_user", actor_id=user.id)
    if everything_else:
        revoke_families_outside_login(user.id, session_id(), "ended_by_user", actor_id=user.id)
    record_event(
        "account.sessions_ended",
        actor_type="user",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        after={"via": via, "logins_ended": len(login_ids)},
    )
    return len(login_ids)

"""Where authorization codes are kept: written once, claimed once, looked up on a replay.

A code is worth tokens only while the browser login it was issued in is
open: logging out, a password change or support ending the sessions makes
the codes of that login worthless, even one issued a moment before.

Plain statements built once: nothing in the session needs the rows
synchronised (the ORM's bulk UPDATE cost 0.1 ms more per claim).
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from idp import changes
from idp.accounts.models import User
from idp.extensions import db, on_postgresql
from idp.login.models import LoginSession
from idp.oauth.models import AuthorizationCode
from idp.orgs.models import Membership
from idp.timeutil import utcnow

_NONCE_USED = (
    db.select(AuthorizationCode.id)
    .where(
        AuthorizationCode.client_id == db.bindparam("client_id"),
        AuthorizationCode.nonce == db.bindparam("nonce"),
    )
    .limit(1)
)


def nonce_used(client_id: str, nonce: str) -> bool:
    """Whether ``client_id`` already has a code with ``nonce``."""
    return db.session.scalar(_NONCE_USED, {"client_id": client_id, "nonce": nonce}) is not None


_CODES = AuthorizationCode.__table__
_INSERT_CODE = db.insert(_CODES)
_CODE_FIELDS = tuple(column.name for column in _CODES.c)
# The code presented (its hash) by the client it was issued to.
_PRESENTED = (
    _CODES.c.code_hash == db.bindparam("digest"),
    _CODES.c.client_id == db.bindparam("claimant"),
)
_CLAIM_CODE = (
    db.update(_CODES)
    .where(*_PRESENTED, _CODES.c.used_at.is_(None))
    .values(used_at=db.bindparam("now"))
    .returning(*_CODES.c)
)


def _open_login(login_session_id) -> sa.Select:
    """The code's login, if still open, read FOR SHARE (after the code's row is locked).

    A logout or revocation (``idp.login.session.end_logins``) either waits for
    the exchange to commit, and then finds its family, or has ended the login,
    and the exchange sees it ended.
    """
    return (
        db.select(LoginSession.id)
        .where(LoginSession.id == login_session_id, LoginSession.ended_at.is_(None))
        .with_for_update(read=True)
    )


_OPEN_LOGIN = _open_login(db.bindparam("login_session_id"))
# The code's account, locked FOR KEY SHARE (what the new family's foreign key
# takes anyway) before the code itself: the order of every path that ends
# logins, which locks the account first (``idp.oauth.revocation``). The claim
# below names it, so it runs before the code's row is locked.
_OWNER = (
    db.select(User.id)
    .where(User.id == db.select(_CODES.c.user_id).where(*_PRESENTED).scalar_subquery())
    .with_for_update(read=True, key_share=True)
    .cte("owner")
)
# PostgreSQL claims the code and reads its user, with their roles in the code's
# organization, and whether its login is open, in one statement (what
# ``user_with_roles`` and ``_OPEN_LOGIN`` read elsewhere).
_CLAIMED = _CLAIM_CODE.where(_CODES.c.user_id.in_(db.select(_OWNER.c.id))).cte("claimed")
_CLAIMED_LOGIN_OPEN = _open_login(_CLAIMED.c.login_session_id).scalar_subquery().label("open_login")
_CLAIM_CODE_WITH_USER = (
    db.select(_CLAIMED, User, Membership.role, _CLAIMED_LOGIN_OPEN)
    .select_from(_CLAIMED)
    .outerjoin(User, User.id == _CLAIMED.c.user_id)
    .outerjoin(
        Membership,
        (Membership.user_id == _CLAIMED.c.user_id)
        & (Membership.organization_id == _CLAIMED.c.organization_id),
    )
)
_REPLAYED_CODE = db.select(AuthorizationCode).where(*_PRESENTED)


def insert_code(row: dict) -> None:
    """Write a new code's row; a nonce its client used before raises ``IntegrityError``."""
    db.session.execute(_INSERT_CODE, row)


class Claim(NamedTuple):
    """A code just claimed: a transient, read-only copy (never add it to the session).

    ``user_and_roles`` is the code's user with their roles in its organization
    where the claim read them too (PostgreSQL), else None; ``login_open`` tells
    whether the browser login the code was issued in is still open.
    """

    code: AuthorizationCode
    user_and_roles: tuple[User | None, list[str]] | None
    login_open: bool


def claim_code(digest: str, client_id: str) -> Claim | None:
    """Mark the unused code ``digest`` of ``client_id`` used and return it, or None.

    One conditional ``UPDATE ... RETURNING``: of two concurrent claims (on any
    instance) exactly one gets the row. On PostgreSQL the same statement reads
    the code's user, their roles and the code's login (``Claim``).
    """
    params = {"digest": digest, "claimant": client_id, "now": utcnow()}
    if on_postgresql():
        changes.note_written(db.session, _CODES.name, inserted=False)  # inside its WITH
        rows = db.session.execute(_CLAIM_CODE_WITH_USER, params).all()
        if not rows:
            return None
        row = rows[0]
        user_and_roles = row.User, [r.role for r in rows if r.role is not None]
        # The statement's snapshot predates a login that moved the code to itself
        # (typing the password again) while the claim waited: look again.
        login_open = row.open_login is not None or _login_open(row.login_session_id)
    else:
        # SQLite lets one transaction write at a time: the claim holds off any logout.
        row = db.session.execute(_CLAIM_CODE, params).first()
        if row is None:
            return None
        user_and_roles = None
        login_open = _login_open(row.login_session_id)
    code = AuthorizationCode(**{name: getattr(row, name) for name in _CODE_FIELDS})
    return Claim(code, user_and_roles, login_open)


def _login_open(login_session_id: str | None) -> bool:
    return login_session_id is not None and (
        db.session.scalar(_OPEN_LOGIN, {"login_session_id": login_session_id}) is not None
    )


def stored_code(digest: str, client_id: str) -> AuthorizationCode | None:
    """The code ``digest`` of ``client_id``, used or not (for a replay's revocation)."""
    return db.session.scalar(_REPLAYED_CODE, {"digest": digest, "claimant": client_id})

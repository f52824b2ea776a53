"""What a login writes: the account's last login, its login session and its audit event.

The account's row is written first: a password change or support ending the
sessions locks it first too, then codes, logins and families, in the order a
login that replaces another takes them (``idp.login.session.LOGIN_REPLACED``).

On PostgreSQL the three rows go in one statement, a ``WITH`` whose ``UPDATE``
of the account feeds the ``INSERT`` of the login, which feeds the ``INSERT``
of the event: one round trip instead of three, none of the unit of work's
bookkeeping, and the account's row still locked before the rest is written.
Anything else the transaction holds is flushed before it, as the statement
goes through the session, and the change counters of the tables written
inside its ``WITH`` move as a flush would move them (``idp.changes``).
Elsewhere (SQLite) the session writes them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from idp import changes
from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.extensions import db, on_postgresql
from idp.login.models import LoginSession

_USERS, _LOGINS, _EVENTS = User.__table__, LoginSession.__table__, AuditEvent.__table__


def write_login(user: User, login: LoginSession, event: AuditEvent | None = None) -> None:
    """Write ``user``'s new ``login`` (and ``event``, not yet in the session); the caller
    commits. The account's ``last_login_at`` becomes the login's ``created_at``."""
    if not on_postgresql():
        user.last_login_at = login.created_at
        db.session.flush()  # the account's row first
        db.session.add_all([login] if event is None else [login, event])
        return
    changes.note_written(db.session, _USERS.name, inserted=False)
    if event is not None:  # else the login's table is the statement's own
        changes.note_written(db.session, _LOGINS.name, inserted=True)
    values = _values("login", _LOGINS, login)
    if event is not None:
        values |= _values("event", _EVENTS, event)
    written = db.session.execute(_LOGIN if event is None else _LOGIN_AND_EVENT, values)
    if written.rowcount != 1:  # the account's row is gone: nothing was written
        raise RuntimeError(f"the login of account {user.id} was not written")
    set_committed_value(user, "last_login_at", login.created_at)


def _values(prefix: str, table: sa.Table, obj: Any) -> dict[str, Any]:
    return {f"{prefix}_{column.key}": getattr(obj, column.key) for column in table.columns}


def _row(prefix: str, table: sa.Table, **given: Any) -> dict[str, Any]:
    """Each column of ``table`` -> its parameter (named ``prefix_column``), unless ``given``."""
    return {
        column.name: given.get(column.key)
        if column.key in given
        else sa.bindparam(f"{prefix}_{column.key}", type_=column.type)
        for column in table.columns
    }


def _one_statement(with_event: bool) -> sa.Executable:
    """Built once: the statement's cache key is computed once too."""
    account = (
        sa.update(_USERS)
        .where(_USERS.c.id == sa.bindparam("login_user_id", type_=_USERS.c.id.type))
        .values(last_login_at=sa.bindparam("login_created_at", type_=_USERS.c.last_login_at.type))
        .returning(_USERS.c.id)
        .cte("account")
    )
    login_row = _row("login", _LOGINS, user_id=account.c.id)
    started = sa.insert(_LOGINS).from_select(list(login_row), sa.select(*login_row.values()))
    if not with_event:
        statement = started.add_cte(account)
    else:
        started = started.returning(_LOGINS.c.id).cte("login")
        event_row = _row("event", _EVENTS)
        recorded = sa.insert(_EVENTS).from_select(
            list(event_row), sa.select(*event_row.values()).select_from(started)
        )
        statement = recorded.add_cte(account, started)
    # An INSERT's row count is kept only when asked for.
    return statement.execution_options(preserve_rowcount=True)


_LOGIN, _LOGIN_AND_EVENT = _one_statement(False), _one_statement(True)

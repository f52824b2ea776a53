"""Signing every person out at once, as after a suspected copy of the session store.

``end_all_sessions`` (``idp sessions end-all``) ends every open browser login
and revokes every live token family issued to a person, of every hub or of
one. The machine tokens of platform and partner services (families without a
person) stay: they have their own rotation. Nobody is disabled: typing the
password again signs a person in as before.

It uses what a single sign-out uses, so every instance sees it on its next
request: a session cookie names a server-side login that is now ended, and
the revoked families move the token families' change counter
(``idp.changes``), which drops what any process cached of them. A code issued
in an ended login is exchanged for nothing (``idp.oauth.code_store``).

Accounts go ``batch`` at a time in id order, each batch in its own short
transaction, so that no lock is held for long and only one batch of ids is in
memory however many people there are. A batch locks its accounts' rows first,
as every path that ends logins does (``idp.oauth.revocation``): a login, a code
exchange or a partner switch of one of them waits for the batch, then finds
the login ended and the family revoked. One event
(``accounts.sessions_ended``) records the counts once every batch is done, or
once a batch failed, with what the batches before it ended (``finished`` false).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from idp.accounts.models import User
from idp.audit.service import record_event
from idp.extensions import db
from idp.login.models import LoginSession
from idp.timeutil import utcnow

BATCH_SIZE = 500
REVOKED_REASON = "all_sessions_ended"


@dataclass(frozen=True)
class Ended:
    """How many open browser logins ended and live token families were revoked."""

    logins: int
    token_families: int


def end_all_sessions(
    *, hub: str | None, ticket: str, reason: str, actor: dict[str, str], batch: int = BATCH_SIZE
) -> Ended:
    """End every person's logins and token families (of ``hub`` only, if given); commit.

    Recorded with ``ticket`` and ``reason`` as the act of ``actor``
    (``actor_type``/``actor_id``).
    """
    ended = Ended(0, 0)
    last_id = ""

    def recorded(finished: bool) -> None:
        record_event(
            "accounts.sessions_ended",
            **actor,
            after={
                "hub": hub,
                "logins_ended": ended.logins,
                "token_families_revoked": ended.token_families,
                "finished": finished,
            },
            ticket=ticket,
            reason=reason,
        )
        db.session.commit()

    try:
        while ids := _lock_accounts(hub, after=last_id, batch=batch):
            done = Ended(_end_logins(ids), _revoke_families(ids))
            db.session.commit()
            ended = Ended(ended.logins + done.logins, ended.token_families + done.token_families)
            last_id = ids[-1]
    except BaseException:
        # The batches committed so far stay ended: they go on the record as such.
        db.session.rollback()
        with contextlib.suppress(Exception):
            recorded(finished=False)
        raise
    recorded(finished=True)
    return ended


def _lock_accounts(hub: str | None, *, after: str, batch: int) -> list[str]:
    """The ids of the next ``batch`` accounts (of ``hub``) after ``after``, their rows locked."""
    query = sa.select(User.id).where(User.id > after)
    if hub is not None:
        query = query.where(User.hub == hub)
    return list(db.session.scalars(query.order_by(User.id).limit(batch).with_for_update()))


def _end_logins(user_ids: list[str]) -> int:
    """End the open logins of ``user_ids`` that still count; how many."""
    now = utcnow()
    max_age = timedelta(seconds=current_app.config["IDP_SESSION_MAX_AGE"])
    ended = db.session.execute(
        sa.update(LoginSession)
        .where(
            LoginSession.user_id.in_(user_ids),
            LoginSession.ended_at.is_(None),
            LoginSession.created_at > now - max_age,
        )
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    return ended.rowcount


def _revoke_families(user_ids: list[str]) -> int:
    """Revoke the live token families of ``user_ids`` (a person's only); how many."""
    from idp.oauth.models import TokenFamily

    now = utcnow()
    revoked = db.session.execute(
        sa.update(TokenFamily)
        .where(
            TokenFamily.user_id.in_(user_ids),
            TokenFamily.revoked_at.is_(None),
            TokenFamily.expires_at > now,
        )
        .values(revoked_at=now, revoked_reason=REVOKED_REASON)
        .execution_options(synchronize_session=False)
    )
    return revoked.rowcount

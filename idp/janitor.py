"""Deleting the rows that have outlived any use, so that the tables stop growing.

Every sign-in leaves an authorization code, a token family with its refresh
tokens and a login session; failed logins leave counters. A row is kept
``IDP_PURGE_AFTER`` seconds after it stopped deciding anything, then ``purge``
(``idp purge``, and the outbox worker once an hour) deletes it:

* an authorization code once it has expired, used or not, and no sooner than
  ``IDP_REFRESH_TOKEN_TTL`` after: as long as the family a code opened can
  live, a replay of the code must find and revoke it;
* a token family once it has expired or was revoked, its refresh tokens first;
* a login session once it was ended, once past ``IDP_SESSION_MAX_AGE``, or
  once unused past ``IDP_SESSION_IDLE_TIMEOUT`` (its cookie has expired; its
  last use is recorded up to ``LAST_SEEN_EVERY`` late): with it go the device
  and address it was shown by;
* a failed-login counter once it has been quiet that long, and never before
  the throttle forgets it (``throttle.FORGET_AFTER``);
* an emailed link (sign-up, address verification, password reset) once it
  was used or spent, or has expired: a pending sign-up's row holds the
  password hash chosen with it, which is kept no longer than that;
* a two-step set-up never confirmed with a code, once it can no longer be
  (``mfa.service.ENROLMENT_TTL``): with it goes the authenticator secret it
  sealed, which nothing will ever check. Two-step sign-in that is on stays.

What the retention means:

* a used code is kept so that its replay is refused and revokes what its
  exchange issued (RFC 6749 section 4.1.2), for as long as that can still
  be live. A code replayed after its row is purged is still refused, as
  unknown (``invalid_grant``). The UNIQUE (client, nonce) index lives in the
  same rows, so a client's nonce is refused as a replay for that long only;
* a purged family is simply missing, which every reader takes as inactive:
  its access tokens fail bearer checks and introspect ``active: false``, its
  refresh tokens go with it (``invalid_grant``), revoking or logging out with
  them does nothing. Only families that are already inactive are purged, so
  no token becomes valid again, and any cached state of them says inactive;
* a purged login session is missing: its cookie no longer logs anyone in,
  which it already did not;
* a purged link is unknown: opening it says the link is invalid or expired,
  as it did once used or expired;
* a purged set-up is missing: the person's two-step page offers to start
  one, and a code typed for the old one is refused as it already was.

Rows go in batches of ``batch``, each in its own short transaction, so that
no lock is held for long however large the backlog. Two purges at once (two
workers) only find less to delete. Audit events, outbox messages, webhook
attempts and everything else are never touched here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from idp.accounts.models import EmailToken
from idp.extensions import db
from idp.login.models import LoginFailure, LoginSession
from idp.login.session import LAST_SEEN_EVERY
from idp.login.throttle import FORGET_AFTER
from idp.mfa.models import TwoStepSecret
from idp.mfa.service import ENROLMENT_TTL
from idp.oauth.models import AuthorizationCode, RefreshToken, TokenFamily
from idp.timeutil import utcnow

BATCH_SIZE = 1000

_CODES = AuthorizationCode.__table__
_FAMILIES = TokenFamily.__table__
_REFRESH_TOKENS = RefreshToken.__table__
_SESSIONS = LoginSession.__table__
_FAILURES = LoginFailure.__table__
_LINKS = EmailToken.__table__
_SET_UPS = TwoStepSecret.__table__
# The tables purged, in the order of the counts reported.
TABLES = tuple(
    t.name for t in (_CODES, _REFRESH_TOKENS, _FAMILIES, _SESSIONS, _FAILURES, _LINKS, _SET_UPS)
)
# The tables whose rows a rule selects in batches (refresh tokens go with their family).
_RULE_TABLES = tuple(t.name for t in (_CODES, _FAMILIES, _SESSIONS, _FAILURES, _LINKS, _SET_UPS))


@dataclass(frozen=True)
class _Rule:
    """Rows whose ``key`` matches ``condition`` go.

    Rows of ``dependents`` that reference them go first; the nullable
    references ``unlinked`` to them are cleared first.
    """

    key: sa.Column
    condition: sa.ColumnElement[bool]
    dependents: tuple[sa.Column, ...] = ()
    unlinked: tuple[sa.Column, ...] = ()


def _rules(now: datetime) -> list[_Rule]:
    config = current_app.config
    kept = timedelta(seconds=config["IDP_PURGE_AFTER"])
    cutoff = now - kept
    session_max_age = timedelta(seconds=config["IDP_SESSION_MAX_AGE"])
    # The longest any login can sit unused and live (support staff's is shorter).
    session_idle = timedelta(seconds=config["IDP_SESSION_IDLE_TIMEOUT"] + LAST_SEEN_EVERY)
    families_live = timedelta(seconds=config["IDP_REFRESH_TOKEN_TTL"])
    return [
        _Rule(_CODES.c.id, _CODES.c.expires_at < now - max(kept, families_live)),
        _Rule(
            _FAMILIES.c.id,
            sa.or_(_FAMILIES.c.expires_at < cutoff, _FAMILIES.c.revoked_at < cutoff),
            dependents=(_REFRESH_TOKENS.c.family_id,),
            unlinked=(_CODES.c.family_id,),
        ),
        _Rule(
            _SESSIONS.c.id,
            sa.or_(
                _SESSIONS.c.ended_at < cutoff,
                _SESSIONS.c.created_at < cutoff - session_max_age,
                _SESSIONS.c.last_seen_at < cutoff - session_idle,
            ),
        ),
        # The throttle reads a counter for FORGET_AFTER seconds: never purged sooner.
        _Rule(
            _FAILURES.c.key,
            _FAILURES.c.last_failed_at < now - max(kept, timedelta(seconds=FORGET_AFTER)),
        ),
        _Rule(_LINKS.c.id, sa.or_(_LINKS.c.expires_at < cutoff, _LINKS.c.used_at < cutoff)),
        # Started again meanwhile, a set-up has a new created_at: the DELETE checks again.
        _Rule(
            _SET_UPS.c.user_id,
            sa.and_(
                _SET_UPS.c.enabled_at.is_(None), _SET_UPS.c.created_at < cutoff - ENROLMENT_TTL
            ),
        ),
    ]


def purge(
    now: datetime | None = None,
    batch: int = BATCH_SIZE,
    *,
    dry_run: bool = False,
    max_batches: int | None = None,
) -> dict[str, int]:
    """Delete what has been useless for ``IDP_PURGE_AFTER``; return how many rows, per table.

    ``dry_run`` counts the same rows and deletes nothing.
    ``max_batches`` bounds the batches of each table in this call, so that a
    backlog is worked off over several calls (``unfinished`` tells).
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    now = now or utcnow()
    counts = dict.fromkeys(TABLES, 0)
    for rule in _rules(now):
        if dry_run:
            _count(rule, counts)
            continue
        for column in rule.unlinked:
            _unlink(column, rule)
        _delete(rule, batch, counts, max_batches)
    db.session.commit()
    return counts


def unfinished(counts: dict[str, int], batch: int, max_batches: int) -> bool:
    """Whether a bounded ``purge`` stopped at its bound in some table (more may be left)."""
    return any(counts[rule_table] >= batch * max_batches for rule_table in _RULE_TABLES)


def _count(rule: _Rule, counts: dict[str, int]) -> None:
    table = rule.key.table
    counts[table.name] += db.session.scalar(
        sa.select(sa.func.count()).select_from(table).where(rule.condition)
    )
    doomed = sa.select(rule.key).where(rule.condition)
    for column in rule.dependents:
        counts[column.table.name] += db.session.scalar(
            sa.select(sa.func.count()).select_from(column.table).where(column.in_(doomed))
        )


def _delete(rule: _Rule, batch: int, counts: dict[str, int], max_batches: int | None) -> None:
    """Delete the rule's rows ``batch`` at a time, one transaction each, ``max_batches`` at most.

    The DELETE checks the condition again: a failed-login counter counted
    again since it was selected stays.
    """
    table = rule.key.table
    for _ in itertools.count() if max_batches is None else range(max_batches):
        keys = db.session.scalars(sa.select(rule.key).where(rule.condition).limit(batch)).all()
        if keys:
            for column in rule.dependents:
                counts[column.table.name] += db.session.execute(
                    sa.delete(column.table).where(column.in_(keys))
                ).rowcount
            counts[table.name] += db.session.execute(
                sa.delete(table).where(rule.key.in_(keys), rule.condition)
            ).rowcount
        db.session.commit()
        if len(keys) < batch:
            return


def _unlink(column: sa.Column, rule: _Rule) -> None:
    """Clear ``column`` where it names a row about to go, in one statement.

    Only codes exchanged before families were named after their code name a
    family (``AuthorizationCode.family_id``). Such a code outlives a family
    revoked early (codes are kept as long as a family could live), so the
    link is cleared; the code stays, used, so its replay and its nonce are
    still refused.
    """
    db.session.execute(
        sa.update(column.table)
        .where(column.is_not(None), column.in_(sa.select(rule.key).where(rule.condition)))
        .values({column.name: None})
    )
    db.session.commit()

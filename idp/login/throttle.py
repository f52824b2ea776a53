"""Slowing down failed logins per account and per address, never locking anyone out for good.

Each failed login counts against three keys: the (account, address) pair,
the address alone and the account alone. Past a few free failures a key
must wait ``2 ** extra`` seconds since its last failure, capped; counters
are forgotten after a quiet period. A real user from another address is at
most delayed by the account-wide key's small cap, never locked out.
Counters live in Redis when ``IDP_REDIS_URL`` is set (shared by every
instance), else in the database, and in the database too while Redis fails
(``idp.extensions.reachable_redis``), so that a Redis outage fails no login.
Counts made on one side are not seen from the other: a switch forgets at
most what one side had counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, timedelta

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from idp.config import keyed_digest, subkey
from idp.extensions import db, on_postgresql, reachable_redis, redis_answered, redis_failed
from idp.login.models import LoginFailure
from idp.timeutil import utcnow

_NAMING_LABEL = b"idp login-failure counter names"
FORGET_AFTER = 900  # seconds without failures before a counter is dropped
REDIS_ERRORS = (RedisError, OSError)


@dataclass(frozen=True)
class Rule:
    """Free failures, then an exponential wait capped at ``max_delay`` seconds."""

    name: str
    free: int
    max_delay: int

    def delay(self, failures: int) -> int:
        """Seconds to wait after the last failure, given ``failures`` so far."""
        if failures < self.free:
            return 0
        return min(2 ** (failures - self.free + 1), self.max_delay)


PAIR = Rule("pair", free=3, max_delay=300)
ADDRESS = Rule("address", free=20, max_delay=300)
ACCOUNT = Rule("account", free=10, max_delay=30)


def _keys(email_normalized: str, address: str) -> list[tuple[Rule, str]]:
    naming_key = subkey(current_app.config, _NAMING_LABEL)

    def digest(*parts: str) -> str:
        """Counter key: an HMAC keyed from ``SECRET_KEY``, not a bare hash.

        An address has only 2**32 values and emails can be guessed, so a bare
        hash would let whoever reads Redis or ``login_failures`` test guesses.
        """
        return keyed_digest(naming_key, "\x00".join(parts))

    return [
        (PAIR, digest("pair", email_normalized, address)),
        (ADDRESS, digest("address", address)),
        (ACCOUNT, digest("account", email_normalized)),
    ]


def _redis():
    return reachable_redis()


def _prefix() -> str:
    return current_app.config["IDP_REDIS_PREFIX"] + "login-fail:"


def _in_redis(commands: list[tuple], *, transaction: bool) -> list | None:
    """The replies to ``commands``, sent in one round trip; None without Redis or if it fails.

    On None the caller counts in the database instead (see the module's docstring).
    """
    client = _redis()
    if client is None:
        return None
    pipe = client.pipeline(transaction=transaction)
    for command in commands:
        pipe.execute_command(*command)
    try:
        replies = pipe.execute()
    except REDIS_ERRORS as error:
        redis_failed(error)
        return None
    redis_answered()
    return replies


def _read(keys: list[str]) -> list[tuple[int, float]]:
    """(failures, time of the last one) of each counter, in one round trip."""
    found = _in_redis([("HGETALL", _prefix() + key) for key in keys], transaction=False)
    if found is not None:
        return [(int(d.get(b"n", 0)), float(d.get(b"t", 0))) if d else (0, 0.0) for d in found]
    cutoff = utcnow() - timedelta(seconds=FORGET_AFTER)
    rows = db.session.scalars(sa.select(LoginFailure).where(LoginFailure.key.in_(keys)))
    found = {
        row.key: (row.failures, row.last_failed_at.replace(tzinfo=UTC).timestamp())
        for row in rows
        if row.last_failed_at >= cutoff
    }
    return [found.get(key, (0, 0.0)) for key in keys]


@dataclass(frozen=True)
class Standing:
    """What the counters say about an attempt before it is checked."""

    retry_after: int  # seconds the caller must still wait (0 = go ahead)
    on_record: bool  # a pair or account counter exists (a success has something to clear)


def standing(email_normalized: str, address: str) -> Standing:
    """Read every counter of this attempt at once."""
    now = time.time()
    wait, on_record = 0.0, False
    keyed = _keys(email_normalized, address)
    for (rule, _), (failures, last) in zip(keyed, _read([key for _, key in keyed]), strict=True):
        if failures:
            wait = max(wait, last + rule.delay(failures) - now)
            on_record = on_record or rule is not ADDRESS
    return Standing(max(0, int(wait + 0.999)), on_record)


def record_failure(email_normalized: str, address: str) -> None:
    """Count one failed attempt on every key (database rows are committed by the caller)."""
    now = time.time()
    commands = []
    for _, key in _keys(email_normalized, address):
        name = _prefix() + key
        commands += [
            ("HINCRBY", name, "n", 1),
            ("HSET", name, "t", now),
            ("EXPIRE", name, FORGET_AFTER),
        ]
    # MULTI/EXEC: each counter and its time move together.
    if _in_redis(commands, transaction=True) is None:
        for _, key in _keys(email_normalized, address):
            _count_in_database(key)


def _count_in_database(key: str) -> None:
    """Atomic upsert, so concurrent failures on several instances all count."""
    now = utcnow()
    cutoff = now - timedelta(seconds=FORGET_AFTER)
    if on_postgresql():
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = LoginFailure.__table__
    statement = insert(table).values(key=key, failures=1, last_failed_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "failures": sa.case((table.c.last_failed_at < cutoff, 1), else_=table.c.failures + 1),
            "last_failed_at": now,
        },
    )
    db.session.execute(statement)


def clear(email_normalized: str, address: str) -> None:
    """Forget the pair and account counters after a successful login."""
    keys = [key for rule, key in _keys(email_normalized, address) if rule is not ADDRESS]
    if _in_redis([("DEL", *(_prefix() + key for key in keys))], transaction=False) is None:
        db.session.execute(sa.delete(LoginFailure).where(LoginFailure.key.in_(keys)))

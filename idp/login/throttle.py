"""Slowing down failed logins per account and per address, never locking anyone out for good.

Each failed login counts against three keys: the (account, address) pair,
the address alone and the account alone. Past a few free failures a key
must wait ``2 ** extra`` seconds since its last failure, capped; counters
are forgotten after a quiet period.

An attempt is counted against its pair and account before its password is
checked (``admit``), in one atomic step with the check of every wait: a
burst of guesses sent at the same moment queues behind its own counts
instead of all reading the counters before any of them failed. A password
that lets its person in takes those counts back (``clear``); the address
counts failures only (``record_failure``), so that a shared address is not
slowed down by its users' successful logins. A real user from another address is at
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
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from idp.config import keyed_digest, subkey
from idp.extensions import db, on_postgresql, reachable_redis, redis_answered, redis_failed
from idp.login.models import LoginFailure
from idp.timeutil import epoch_seconds, utcnow

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


@dataclass(frozen=True)
class Counters:
    """One kind of secret whose wrong guesses are counted: its three rules, its own keys."""

    label: str  # names the counters apart from another kind's ("": passwords)
    pair: Rule
    address: Rule
    account: Rule


PASSWORDS = Counters("", PAIR, ADDRESS, ACCOUNT)
# A code of the authenticator app has a million values, three of them accepted at a
# time: after a few free misses the account waits far longer than a password's does.
CODES = Counters(
    "second step ",
    Rule("pair", free=3, max_delay=900),
    ADDRESS,
    Rule("account", free=5, max_delay=900),
)


def _keys(
    email_normalized: str, address: str, counters: Counters = PASSWORDS
) -> list[tuple[Rule, str]]:
    naming_key = subkey(current_app.config, _NAMING_LABEL)
    label = counters.label

    def digest(*parts: str) -> str:
        """Counter key: an HMAC keyed from ``SECRET_KEY``, not a bare hash.

        An address has only 2**32 values and emails can be guessed, so a bare
        hash would let whoever reads Redis or ``login_failures`` test guesses.
        """
        return keyed_digest(naming_key, "\x00".join(parts))

    return [
        (counters.pair, digest(label + "pair", email_normalized, address)),
        (counters.address, digest(label + "address", address)),
        (counters.account, digest(label + "account", email_normalized)),
    ]


def _redis():
    return reachable_redis()


def _prefix() -> str:
    return current_app.config["IDP_REDIS_PREFIX"] + "login-fail:"


def _in_redis(commands: list[tuple], *, transaction: bool) -> list | None:
    """The replies to ``commands``, sent in one round trip; None without Redis or if it fails.

    On None the caller counts in the database instead (see the module's docstring).
    """

    def send(client) -> list:
        pipe = client.pipeline(transaction=transaction)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute()

    return _asked(send)


def _asked(ask):
    """``ask(client)``'s reply; None without Redis or if it fails (and Redis is then avoided)."""
    client = _redis()
    if client is None:
        return None
    try:
        reply = ask(client)
    except REDIS_ERRORS as error:
        redis_failed(error)
        return None
    redis_answered()
    return reply


# Checks every counter's wait and, when none applies, counts the attempt on the
# first ``#KEYS - 1`` counters (the pair and the account; the last is the address,
# counted on failure only). ARGV: now, FORGET_AFTER, then each counter's free
# failures and maximum delay. Returns the seconds to wait (0: counted, go ahead).
_ADMIT = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  local free = tonumber(ARGV[1 + 2 * i])
  if n >= free then
    local last = tonumber(redis.call('HGET', key, 't') or '0')
    local delay = math.min(2 ^ (n - free + 1), tonumber(ARGV[2 + 2 * i]))
    wait = math.max(wait, last + delay - now)
  end
end
if wait > 0 then
  return tostring(wait)
end
for i = 1, #KEYS - 1 do
  redis.call('HINCRBY', KEYS[i], 'n', 1)
  redis.call('HSET', KEYS[i], 't', ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[2])
end
return '0'
"""


def admit(email_normalized: str, address: str, counters: Counters = PASSWORDS) -> int:
    """Count an attempt before its password is checked; 0, or the seconds it must wait.

    A refused attempt is not counted. The address's counter is read, not
    counted: ``record_failure`` counts it once the password turned out wrong.
    ``counters`` names another kind of secret counted the same way (``CODES``).
    """
    keyed = _keys(email_normalized, address, counters)  # pair, address, account
    ordered = [keyed[0], keyed[2], keyed[1]]  # the counted ones first, as _ADMIT reads them
    now = time.time()
    args = [now, FORGET_AFTER]
    for rule, _ in ordered:
        args += [rule.free, rule.max_delay]
    keys = [_prefix() + key for _, key in ordered]
    # By its digest (EVALSHA): the script is sent again only to a server that lost it.
    wait = _asked(lambda client: client.register_script(_ADMIT)(keys=keys, args=args))
    if wait is not None:
        return _whole_seconds(float(wait))
    return _admit_in_database(ordered)


def _admit_in_database(ordered: list[tuple[Rule, str]]) -> int:
    """``_ADMIT`` on the ``login_failures`` rows, which it locks; commits the session.

    The counted rows are created first and every row is read ``FOR UPDATE`` in
    key order, so concurrent attempts on any instance queue here one by one
    (SQLite lets one transaction write at a time).
    """
    at = utcnow()
    cutoff = at - timedelta(seconds=FORGET_AFTER)
    counted = sorted(key for _, key in ordered[:-1])
    for key in counted:
        _upsert(key, failures=0, at=at, on_conflict=None)
    rows = db.session.scalars(
        sa.select(LoginFailure)
        .where(LoginFailure.key.in_([key for _, key in ordered]))
        .order_by(LoginFailure.key)
        .with_for_update()
    ).all()
    found = {row.key: row for row in rows if row.last_failed_at >= cutoff and row.failures}
    now = time.time()  # once the rows are ours: an attempt admitted meanwhile is not "later"
    wait = 0.0
    for rule, key in ordered:
        row = found.get(key)
        delay = rule.delay(row.failures) if row is not None else 0
        if delay:  # free failures ask for no wait, however recent
            last = epoch_seconds(row.last_failed_at)
            wait = max(wait, last + delay - now)
    if wait <= 0:
        for row in rows:
            if row.key in counted:
                row.failures = row.failures + 1 if row.key in found else 1
                row.last_failed_at = at
    db.session.commit()
    return _whole_seconds(wait)


def _whole_seconds(wait: float) -> int:
    return max(0, int(wait + 0.999))


def record_failure(email_normalized: str, address: str, counters: Counters = PASSWORDS) -> None:
    """Count a wrong password on the address's counter (the session commits it, if there).

    The pair and the account counted it already, when it was admitted.
    """
    _, key = _keys(email_normalized, address, counters)[1]
    name = _prefix() + key
    commands = [("HINCRBY", name, "n", 1), ("HSET", name, "t", time.time())]
    commands.append(("EXPIRE", name, FORGET_AFTER))
    # MULTI/EXEC: the counter and its time move together.
    if _in_redis(commands, transaction=True) is None:
        _count_in_database(key)


def _count_in_database(key: str) -> None:
    """Atomic upsert, so concurrent failures on several instances all count."""
    now = utcnow()
    cutoff = now - timedelta(seconds=FORGET_AFTER)
    table = LoginFailure.__table__
    _upsert(
        key,
        failures=1,
        at=now,
        on_conflict={
            "failures": sa.case((table.c.last_failed_at < cutoff, 1), else_=table.c.failures + 1),
            "last_failed_at": now,
        },
    )


def _upsert(key: str, *, failures: int, at, on_conflict: dict | None) -> None:
    """Insert a counter row; on conflict update it with ``on_conflict``, or leave it."""
    if on_postgresql():
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = LoginFailure.__table__
    statement = insert(table).values(key=key, failures=failures, last_failed_at=at)
    if on_conflict is None:
        statement = statement.on_conflict_do_nothing(index_elements=[table.c.key])
    else:
        statement = statement.on_conflict_do_update(index_elements=[table.c.key], set_=on_conflict)
    db.session.execute(statement)


def clear(email_normalized: str, address: str, counters: Counters = PASSWORDS) -> None:
    """Forget the pair and account counters after a successful login."""
    keyed = _keys(email_normalized, address, counters)
    keys = [keyed[0][1], keyed[2][1]]
    if _in_redis([("DEL", *(_prefix() + key for key in keys))], transaction=False) is None:
        db.session.execute(sa.delete(LoginFailure).where(LoginFailure.key.in_(keys)))

"""Rate limits: fixed windows, counted in Redis or in process.

A limited view counts one hit per limit of its setting (``IDP_LOGIN_RATE_LIMIT``
and the like, in the ``limits`` notation) against a key, the client's
address unless the view names another, and refuses with 429 and
``Retry-After`` once a window is full. A counter is named after an HMAC of
its key, so neither an address nor an email is kept in clear. With
``IDP_REDIS_URL`` the counters live in Redis, so every instance shares them;
otherwise in the process.
While Redis fails they live in the process too: each worker process then
allows the full limit on its own, which is weaker than shared counting but
keeps logins and token requests answered (``idp.extensions.redis_usable``).

This is the whole of the Flask side, in place of Flask-Limiter's extension:
that one runs its own hooks before and after every request, limited or not
(about 80 us of a gateway API-key check here, half again its cost), and
about 0.2 ms of bookkeeping around the storage round trips of every limited
one. Only the views decorated here pay anything, and only while limits are on.

In Redis a request costs one round trip for all of its windows (``_HIT``, a
Lua script), where the ``limits`` library's strategies take one per window:
a token request has two windows, and a sign-in is given back to both again.
A give-back reaches only the windows the request was counted in, told apart
by when each ends. The ``limits`` library reads the settings and keeps the
in-process counters. Needs Redis 5 or newer (scripts that read the clock).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Flask, Response, current_app, make_response, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from redis.exceptions import RedisError
from werkzeug.exceptions import TooManyRequests

from idp.config import keyed_digest, subkey
from idp.extensions import redis_answered, redis_failed, redis_for_url, redis_usable

_EXTENSION = "idp_ratelimits"
_NAMING_LABEL = b"idp rate-limit counter names"

# How far apart two readings of one window's end may be (TIME and PTTL round to the
# millisecond apart). The next window begins only once this one has ended, so it ends
# a window (a second or more) later; only a key lost early (eviction, a failover) and
# begun again within these milliseconds of its start could be taken for the old one.
# A window not recognised keeps its count: the safe side.
_SAME_WINDOW_MS = 3

# Both scripts read Redis's clock first: ``now``, in ms.
_NOW = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
"""

# KEYS: a counter per window; ARGV: each window's limit, then its length in ms.
# Counts the request in each window up to the first full one. Answers each counted
# window's end (ms on Redis's clock, for the give-back), then the number of the full
# window (0: none) and the ms left of it.
_HIT = (
    _NOW
    + """
local answer = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local left = redis.call('PTTL', key)
  if count == 1 or left < 0 then
    left = tonumber(ARGV[2 * i])
    redis.call('PEXPIRE', key, left)
  end
  answer[i] = now + left
  if count > tonumber(ARGV[2 * i - 1]) then
    answer[#answer + 1] = i
    answer[#answer + 1] = left
    return answer
  end
end
answer[#answer + 1] = 0
answer[#answer + 1] = 0
return answer
"""
)

# KEYS: the windows a request was counted in; ARGV: each one's end as ``_HIT`` answered,
# then how near another end must be to be that same window's.
# Takes the request back out of each window that is still that one: a window that has
# ended, or ended and begun again, keeps its count.
_GIVE_BACK = (
    _NOW
    + """
local near = tonumber(ARGV[#KEYS + 1])
for i, key in ipairs(KEYS) do
  local left = redis.call('PTTL', key)
  if left > 0 and math.abs(now + left - tonumber(ARGV[i])) < near
      and tonumber(redis.call('GET', key)) > 0 then
    redis.call('DECR', key)
  end
end
return 0
"""
)


def init_app(app: Flask) -> None:
    """Count in Redis when ``IDP_REDIS_URL`` is set, else in this process (when limits are on)."""
    app.extensions[_EXTENSION] = _Counters(app) if app.config["IDP_RATELIMIT_ENABLED"] else None


@dataclass(frozen=True)
class Counted:
    """Where ``_Counters.hit`` counted a request: its counters, and each window's end.

    The ends are the store's own: seconds since the epoch in process, milliseconds on
    Redis's clock in Redis; only that store reads them back.
    """

    store: _InProcess | _InRedis
    keys: tuple[str, ...]
    ends: tuple[float, ...]


class _InProcess:
    """This worker's own counters (the ``limits`` library's memory storage).

    One lock around each call, as the script's atomicity in Redis: a count and
    its window's end are read together, and a give-back cannot decrement a
    window another thread began meanwhile.
    """

    def __init__(self):
        self.storage = MemoryStorage()
        self.lock = threading.Lock()

    def hit(self, keys: Sequence[str], limits: Sequence[RateLimitItem]):
        """Count in each window up to the first full one: ``(ends, full, seconds left of it)``."""
        ends = []
        with self.lock:
            for number, (key, limit) in enumerate(zip(keys, limits, strict=True)):
                count = self.storage.incr(key, limit.get_expiry())
                ends.append(self.storage.get_expiry(key))
                if count > limit.amount:
                    return ends, number, ends[-1] - time.time()
        return ends, None, 0.0

    def give_back(self, keys: Sequence[str], ends: Sequence[float]) -> None:
        with self.lock:
            for key, end in zip(keys, ends, strict=True):
                # The same window ends at the very same instant; a new one later.
                if self.storage.get(key) > 0 and self.storage.get_expiry(key) == end:
                    self.storage.decr(key)


class _InRedis:
    """The counters every instance shares: one round trip (``_HIT``) per request."""

    def __init__(self, url: str, prefix: str):
        self.redis, self.prefix = redis_for_url(url), prefix
        self._hit = self.redis.register_script(_HIT)
        self._give_back = self.redis.register_script(_GIVE_BACK)

    def hit(self, keys: Sequence[str], limits: Sequence[RateLimitItem]):
        """As ``_InProcess.hit``, in one script: raises ``RedisError`` when Redis fails."""
        *ends, full, left = self._hit(keys=self._named(keys), args=_windows(tuple(limits)))
        return ends, (full - 1 if full else None), left / 1000

    def give_back(self, keys: Sequence[str], ends: Sequence[float]) -> None:
        self._give_back(keys=self._named(keys), args=[*ends, _SAME_WINDOW_MS])

    def _named(self, keys: Sequence[str]) -> list[str]:
        return [self.prefix + key for key in keys]


@functools.lru_cache(maxsize=32)
def _windows(limits: tuple[RateLimitItem, ...]) -> list[int]:
    """``_HIT``'s ARGV for a setting's limits: each one's amount, then its length in ms."""
    return [value for limit in limits for value in (limit.amount, limit.get_expiry() * 1000)]


class _Counters:
    def __init__(self, app: Flask):
        redis_url = self.redis_url = app.config["IDP_REDIS_URL"]
        self.naming_key = subkey(app.config, _NAMING_LABEL)
        self.in_process = _InProcess()
        self.shared = (
            _InRedis(redis_url, app.config["IDP_REDIS_PREFIX"] + "rl:") if redis_url else None
        )

    def hit(self, limits: Sequence[RateLimitItem], scope: str, key: str) -> Counted:
        """Count this request in every window; refuse it if any is full.

        Returns where it was counted, for ``give_back``.
        """
        keys = tuple(limit.key_for(scope, self.digest(key)) for limit in limits)
        store, (ends, full, seconds_left) = self._count(keys, limits)
        if full is not None:
            limit = limits[full]
            retry_after = min(max(1, int(seconds_left) + 1), limit.get_expiry())
            raise TooManyRequests(
                f"Too many requests: at most {limit}. Try again later.", retry_after=retry_after
            )
        return Counted(store, keys, tuple(ends))

    def digest(self, key: str) -> str:
        """What a counter is named after: an HMAC of its key (an address, an email).

        Keyed from ``SECRET_KEY``, so every instance names a client's counters alike,
        while whoever reads Redis's keys (a dump, ``MONITOR``) learns neither who
        signed up nor from where, and cannot test a guessed address against them.
        """
        return keyed_digest(self.naming_key, key)

    def _count(self, keys: Sequence[str], limits: Sequence[RateLimitItem]):
        """The store that counted the request (Redis, unless it fails), and its answer."""
        if self.shared is not None and redis_usable(self.redis_url):
            try:
                answer = self.shared.hit(keys, limits)
            except RedisError as error:
                redis_failed(error, self.redis_url)
            else:
                redis_answered(self.redis_url)
                return self.shared, answer
        return self.in_process, self.in_process.hit(keys, limits)

    def give_back(self, counted: Counted) -> None:
        """Uncount a request ``hit`` counted, in each window of it that has not ended since.

        Not while Redis is known to be down: the request stays counted (the safe
        side) rather than wait out a connection that may time out.
        """
        if counted.store is self.shared and not redis_usable(self.redis_url):
            return
        try:
            counted.store.give_back(counted.keys, counted.ends)
        except RedisError as error:  # it stays counted: the safe side
            redis_failed(error, self.redis_url)


@functools.lru_cache(maxsize=32)
def parsed(value: str) -> tuple[RateLimitItem, ...]:
    """The limits a setting names (``idp.config`` refuses to start with an unreadable one)."""
    return tuple(parse_many(value))


def remote_address() -> str:
    """The client's address (``IDP_PROXY_HOPS`` decides whose, behind proxies)."""
    return request.remote_addr or ""


def succeeded(response: Response) -> bool:
    """Whether a limited view's answer is a success (below 400): for ``given_back_when``."""
    return response.status_code < 400


def rate_limited(
    setting: str,
    *,
    scope: str | None = None,
    key: Callable[[], str] = remote_address,
    methods: tuple[str, ...] = ("POST",),
    given_back_when: Callable[[Response], bool] | None = None,
):
    """Decorator: count ``methods`` requests of the view against the limits in ``setting``.

    Views sharing a ``scope`` share counters (the view's name otherwise). A
    request whose response ``given_back_when`` accepts is uncounted once
    answered: a sign-in that let its person in costs nobody behind the same
    address (an office, a carrier's shared address) one of their attempts.
    Counted first and given back after, never the other way round, so that
    requests running at once can never pass more than the limit.
    """

    def decorate(view):
        counted_as = scope or f"{view.__module__}.{view.__name__}"

        @functools.wraps(view)
        def call(*args, **kwargs):
            counters = current_app.extensions[_EXTENSION]
            if counters is None or request.method not in methods:
                return view(*args, **kwargs)
            limits, client = parsed(current_app.config[setting]), key()
            counted = counters.hit(limits, counted_as, client)
            if given_back_when is None:
                return view(*args, **kwargs)
            response = make_response(view(*args, **kwargs))
            if given_back_when(response):
                counters.give_back(counted)
            return response

        call._idp_rate_limited = True  # read by the OpenAPI document (its 429 answers)
        return call

    return decorate

"""Rate limits: fixed windows counted by the ``limits`` library, in Redis or in process.

A limited view counts one hit per limit of its setting (``IDP_LOGIN_RATE_LIMIT``
and the like, in the ``limits`` notation) against a key, the client's
address unless the view names another, and refuses with 429 and
``Retry-After`` once a window is full. With ``IDP_REDIS_URL`` the counters
live in Redis, so every instance shares them; otherwise in the process.
While Redis fails they live in the process too: each worker process then
allows the full limit on its own, which is weaker than shared counting but
keeps logins and token requests answered (``idp.extensions.redis_usable``).

This is the whole of the Flask side, in place of Flask-Limiter's extension:
that one runs its own hooks before and after every request, limited or not
(about 80 us of a gateway API-key check here, half again its cost), and
about 0.2 ms of bookkeeping around the storage round trips of every limited
one. Only the views decorated here pay anything, and only while limits are on.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable

from flask import Flask, Response, current_app, make_response, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from idp.extensions import redis_answered, redis_failed, redis_usable

_EXTENSION = "idp_ratelimits"


def init_app(app: Flask) -> None:
    """Count in Redis when ``IDP_REDIS_URL`` is set, else in this process (when limits are on)."""
    app.extensions[_EXTENSION] = _Counters(app) if app.config["IDP_RATELIMIT_ENABLED"] else None


class _Counters:
    def __init__(self, app: Flask):
        redis_url = self.redis_url = app.config["IDP_REDIS_URL"]
        self.in_process = FixedWindowRateLimiter(storage_from_string("memory://"))
        self.shared = (
            FixedWindowRateLimiter(
                storage_from_string(
                    # redis-py's unix:// is redis+unix:// to the limits library.
                    "redis+" + redis_url if redis_url.startswith("unix://") else redis_url,
                    key_prefix=app.config["IDP_REDIS_PREFIX"] + "rl",
                    socket_timeout=2,
                    socket_connect_timeout=2,
                    wrap_exceptions=True,
                )
            )
            if redis_url
            else None
        )

    def hit(self, limits: Iterable[RateLimitItem], scope: str, key: str) -> FixedWindowRateLimiter:
        """Count this request in every window; refuse it if any is full.

        Returns the counters it was counted in, for ``give_back``.
        """
        windows = self.in_process
        if self.shared is None or not redis_usable(self.redis_url):
            refusal = self._count(windows, limits, scope, key)
        else:
            try:
                refusal = self._count(self.shared, limits, scope, key)
            except StorageError as error:
                redis_failed(error.storage_error, self.redis_url)
                refusal = self._count(windows, limits, scope, key)
            else:
                redis_answered(self.redis_url)
                windows = self.shared
        if refusal is not None:
            raise refusal
        return windows

    def give_back(
        self, windows: FixedWindowRateLimiter, limits: Iterable[RateLimitItem], scope: str, key: str
    ) -> None:
        """Uncount a request ``hit`` counted (in every window: it was let through all of them).

        A window that ended meanwhile is not credited for the next one: a count
        taken below zero is put back to zero.
        """
        try:
            for limit in limits:
                counter, expiry = limit.key_for(scope, key), limit.get_expiry()
                if windows.storage.incr(counter, expiry, amount=-1) < 0:
                    windows.storage.incr(counter, expiry, amount=1)
        except StorageError as error:  # it stays counted: the safe side
            redis_failed(error.storage_error, self.redis_url)

    @staticmethod
    def _count(
        windows: FixedWindowRateLimiter, limits: Iterable[RateLimitItem], scope: str, key: str
    ) -> TooManyRequests | None:
        """Count the request in each window up to the first full one, whose refusal it returns."""
        for limit in limits:
            if not windows.hit(limit, scope, key):
                try:
                    reset_at = windows.get_window_stats(limit, scope, key).reset_time
                except StorageError:  # refused already: say the whole window
                    reset_at = time.time() + limit.get_expiry()
                retry_after = max(1, int(reset_at - time.time()) + 1)
                return TooManyRequests(
                    f"Too many requests: at most {limit}. Try again later.",
                    retry_after=min(retry_after, limit.get_expiry()),
                )
        return None


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
            windows = counters.hit(limits, counted_as, client)
            if given_back_when is None:
                return view(*args, **kwargs)
            response = make_response(view(*args, **kwargs))
            if given_back_when(response):
                counters.give_back(windows, limits, counted_as, client)
            return response

        return call

    return decorate

"""Unbound extensions, bound to an application in ``create_app``."""

import functools
import logging
import time

from flask import current_app
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
api = Api()
csrf = CSRFProtect()

log = logging.getLogger(__name__)

# Seconds the login throttle and the rate limits count without Redis after it failed.
REDIS_REDIAL_AFTER = 5.0
_redis_down_until: dict[str, float] = {}
_clock = time.monotonic  # tests move it instead of waiting


@functools.cache
def redis_for_url(url: str):
    """One client (and connection pool) per Redis URL, shared by every user in the process."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def shared_redis():
    """The Redis every instance shares (``IDP_REDIS_URL``), or None in the embedded setup."""
    url = current_app.config.get("IDP_REDIS_URL")
    return redis_for_url(url) if url else None


def reachable_redis():
    """``shared_redis()``, or None for ``REDIS_REDIAL_AFTER`` seconds after ``redis_failed``.

    Redis makes counters shared and cheap; it is not allowed to stop logins.
    While it is down its users count elsewhere (the login throttle in the
    database, rate limits in the process) instead of failing every request.
    Once the interval is over one request tries Redis again; the process's
    other threads keep counting elsewhere until it answers (``redis_answered``)
    or fails, so that at most one request per process and interval waits for
    a dial that may time out.
    """
    url = current_app.config.get("IDP_REDIS_URL")
    return redis_for_url(url) if url and redis_usable(url) else None


def redis_usable(url: str) -> bool:
    """Whether a request may use the Redis at ``url`` now (see ``reachable_redis``)."""
    down_until = _redis_down_until.get(url)
    if down_until is None:
        return True
    now = _clock()
    if now < down_until:
        return False
    _redis_down_until[url] = now + REDIS_REDIAL_AFTER  # this request is the one that tries
    return True


def redis_answered(url: str | None = None) -> None:
    """Redis answered a ``reachable_redis`` user: every thread uses it again."""
    if _redis_down_until:
        _redis_down_until.pop(url or current_app.config["IDP_REDIS_URL"], None)


def redis_failed(error: BaseException, url: str | None = None) -> None:
    """Note that Redis failed; ``reachable_redis`` answers None for a while."""
    _redis_down_until[url or current_app.config["IDP_REDIS_URL"]] = _clock() + REDIS_REDIAL_AFTER
    # The class only: a message could carry the URL, and with it a password.
    log.warning(
        "Redis failed (%s); for %.0f s failed logins are counted in the database "
        "and rate limits in each worker process",
        type(error).__name__,
        REDIS_REDIAL_AFTER,
    )


def on_postgresql() -> bool:
    """Whether the session's database is PostgreSQL (some writes take one statement there)."""
    return db.session.get_bind().dialect.name == "postgresql"

"""Unbound extensions, bound to an application in ``create_app``."""

import functools

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


@functools.cache
def _redis_for(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def shared_redis():
    """The Redis every instance shares (``IDP_REDIS_URL``), or None in the embedded setup."""
    url = current_app.config.get("IDP_REDIS_URL")
    return _redis_for(url) if url else None


def on_postgresql() -> bool:
    """Whether the session's database is PostgreSQL (some writes take one statement there)."""
    return db.session.get_bind().dialect.name == "postgresql"

"""The benchmark's own database: PostgreSQL when reachable, else SQLite; migrated and seeded.

A seeded database is reused while its manifest matches the scale and the
migration heads, so repeated runs skip the seeding; ``--fresh`` forces it.
The manifest (what was seeded, and the sampled ids, keys and secrets the
scenarios send) is kept in the database it describes, in a table of its own
written once the seed is complete: two checkouts sharing a PostgreSQL
database can never pair one seed's samples with another seed's rows, and an
interrupted seed leaves no manifest behind.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.seed import seed

PG_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class Target:
    """Where the benchmark keeps its data."""

    url: str
    kind: str  # "postgresql" or "sqlite"
    redis_url: str | None
    name: str


def _postgres_reachable() -> bool:
    engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def _redis_reachable() -> bool:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def choose(scale_name: str, instance: Path) -> Target:
    """PostgreSQL (database ``idp_bench_<scale>``) when reachable, else a SQLite file."""
    name = f"idp_bench_{scale_name}"
    redis_url = REDIS_URL if _redis_reachable() else None
    if _postgres_reachable():
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        return Target(url, "postgresql", redis_url, name)
    return Target(f"sqlite:///{instance / (name + '.sqlite3')}", "sqlite", redis_url, name)


def _recreate(target: Target) -> None:
    if target.kind == "postgresql":
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{target.name}"'))
        admin.dispose()
    else:
        path = Path(make_url(target.url).database)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _heads() -> list[str]:
    from alembic.script import ScriptDirectory

    from idp import MIGRATIONS_DIR

    return sorted(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


# Not one of the service's tables: only the benchmark reads or writes it.
MANIFEST = sa.Table("bench_manifest", sa.MetaData(), sa.Column("body", sa.Text, nullable=False))


def stored_manifest(engine: sa.Engine) -> dict | None:
    """The manifest kept in ``engine``'s database, or None (missing, or not seeded to the end)."""
    try:
        with engine.connect() as conn:
            body = conn.execute(sa.select(MANIFEST.c.body)).scalar()
    except sa.exc.SQLAlchemyError:
        return None
    return json.loads(body) if body else None


def prepare(target: Target, users: int, *, fresh: bool) -> dict:
    """Return the manifest of a migrated database seeded with ``users`` accounts.

    Must run inside an app context of an app bound to ``target.url``.
    """
    from flask_migrate import upgrade

    from idp.extensions import db

    heads = _heads()
    manifest = None if fresh else stored_manifest(db.engine)
    if manifest is not None and manifest.get("users") == users and manifest.get("heads") == heads:
        return manifest | {"reused": True}
    db.engine.dispose()
    _recreate(target)
    upgrade(revision="heads")
    started = time.monotonic()
    with db.engine.begin() as conn:
        seeded = seed(conn, users=users)
    if target.kind == "postgresql":
        # VACUUM too, not only ANALYZE: otherwise autovacuum takes up the millions of
        # rows just copied in (and the first reads set their hint bits) while the
        # first run measures, on the same cores.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE)"))
    manifest = {
        "users": users,
        "heads": heads,
        "database": target.kind,
        "seed_seconds": round(time.monotonic() - started, 1),
        "counts": seeded.counts,
        "plan": {"partner_users": seeded.plan.partner_users, "clients": seeded.plan.clients},
        "samples": seeded.extra,
    }
    with db.engine.begin() as conn:  # last: a seed cut short has no manifest
        MANIFEST.create(conn)
        conn.execute(sa.insert(MANIFEST).values(body=json.dumps(manifest)))
    return manifest | {"reused": False}

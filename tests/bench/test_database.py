"""A seeded benchmark database is reused only with the manifest kept in it.

The scenarios send the manifest's sampled keys, secrets and accounts: paired
with rows of another seed (another checkout's, sharing the database), every
request of those scenarios would be refused.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bench.database import MANIFEST, Target, prepare, stored_manifest
from idp import create_app
from idp.extensions import db
from tests.conftest import app_config


@pytest.fixture
def bench_database(tmp_path, redis_prefix):
    """An app over a database of its own (not the test database, which prepare recreates)."""
    target = Target(f"sqlite:///{tmp_path / 'bench.sqlite3'}", "sqlite", None, "bench")
    application = create_app(app_config(target.url, redis_prefix))
    with application.app_context():
        yield target
        db.session.remove()
        db.engine.dispose()


def _api_keys_stored() -> int:
    return db.session.scalar(sa.text("SELECT count(*) FROM channel_api_keys"))


def test_a_seeded_database_is_reused_with_its_own_manifest(bench_database):
    first = prepare(bench_database, 20, fresh=False)
    assert first["reused"] is False and _api_keys_stored() > 0

    again = prepare(bench_database, 20, fresh=False)

    assert again["reused"] is True
    assert again["samples"] == first["samples"]


def test_whoever_seeds_last_is_what_the_next_run_gets(bench_database):
    first = prepare(bench_database, 20, fresh=False)
    reseeded = prepare(bench_database, 20, fresh=True)  # as another checkout would
    assert reseeded["samples"]["api_keys"] != first["samples"]["api_keys"]

    reused = prepare(bench_database, 20, fresh=False)

    assert reused["reused"] is True
    assert reused["samples"] == reseeded["samples"]


def test_a_seed_without_its_manifest_or_of_another_size_is_made_again(bench_database):
    first = prepare(bench_database, 20, fresh=False)
    with db.engine.begin() as conn:  # as a seed cut short before its last step leaves it
        MANIFEST.drop(conn)
    assert stored_manifest(db.engine) is None

    again = prepare(bench_database, 20, fresh=False)
    assert again["reused"] is False
    assert again["samples"]["api_keys"] != first["samples"]["api_keys"]

    larger = prepare(bench_database, 30, fresh=False)
    assert larger["reused"] is False and larger["users"] == 30
    assert stored_manifest(db.engine)["users"] == 30

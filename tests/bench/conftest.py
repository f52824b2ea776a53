"""A second application over the same test database, started in bench mode."""

from __future__ import annotations

import pytest

from idp import create_app
from idp.extensions import db
from tests.conftest import app_config


def _second_app(database_url: str, redis_prefix: str, bench_mode: bool):
    second = create_app(app_config(database_url, redis_prefix, IDP_BENCH_MODE=bench_mode))
    yield second
    with second.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def bench_app(app, database_url, redis_prefix):
    """The app as ``make bench`` starts it: ``IDP_BENCH_MODE`` on, same database."""
    yield from _second_app(database_url, redis_prefix, True)


@pytest.fixture
def production_like_app(app, database_url, redis_prefix):
    """The app with ``IDP_BENCH_MODE`` off, whatever the environment of the test run says."""
    yield from _second_app(database_url, redis_prefix, False)


@pytest.fixture
def bench_manifest(bench_app):
    """200 seeded accounts, described as ``bench.database.prepare`` describes a seeded scale."""
    from bench.seed import seed

    with bench_app.app_context(), db.engine.begin() as conn:
        seeded = seed(conn, users=200)
    return {
        "users": 200,
        "plan": {"partner_users": seeded.plan.partner_users, "clients": seeded.plan.clients},
        "samples": seeded.extra,
    }

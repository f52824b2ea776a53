"""A second application over the same test database, started in bench mode."""

from __future__ import annotations

import pytest

from idp import create_app
from idp.extensions import db
from tests.conftest import app_config


@pytest.fixture
def bench_app(app, database_url, redis_prefix):
    """The app as ``make bench`` starts it: ``IDP_BENCH_MODE`` on, same database."""
    bench = create_app(app_config(database_url, redis_prefix, IDP_BENCH_MODE=True))
    yield bench
    with bench.app_context():
        db.session.remove()
        db.engine.dispose()

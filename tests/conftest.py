"""Test harness: one database per run (SQLite, or PostgreSQL when configured), emptied per test.

``IDP_TEST_DATABASE_URL`` runs the whole suite on PostgreSQL, in a fresh
database created for this run; ``IDP_TEST_REDIS_URL`` enables the Redis tests;
``IDP_REQUIRE_SERVICES=1`` turns every skip of a postgres/redis/browser test
into a failure of the run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from idp import create_app
from idp.extensions import db

pytest_plugins = [
    "tests.fixtures.smtp",
    "tests.fixtures.browser",
    "tests.fixtures.audit_actions",
    "tests.fixtures.outcomes",
]

PG_URL = os.environ.get("IDP_TEST_DATABASE_URL") or None
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL") or None
REQUIRE_SERVICES = os.environ.get("IDP_REQUIRE_SERVICES") == "1"
SERVICE_MARKERS = ("postgres", "redis", "browser")
_service_skips: list[str] = []


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("postgres") and not PG_URL:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set IDP_TEST_DATABASE_URL"))
        if item.get_closest_marker("redis") and not REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs Redis: set IDP_TEST_REDIS_URL"))


def pytest_runtest_logreport(report):
    if report.skipped and any(m in report.keywords for m in SERVICE_MARKERS):
        _service_skips.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if REQUIRE_SERVICES and _service_skips:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(
                f"IDP_REQUIRE_SERVICES=1 but {len(_service_skips)} service test(s) were skipped:",
                red=True,
            )
            for nodeid in _service_skips:
                reporter.write_line(f"  {nodeid}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@contextlib.contextmanager
def fresh_database(directory: Path):
    """The URL of a new, empty database (a file in ``directory`` on SQLite); dropped afterwards."""
    if not PG_URL:
        yield f"sqlite:///{directory / 'idp-test.sqlite3'}"
        return
    name = f"idp_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A fresh, migrated-later database for this run; dropped afterwards."""
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"idp-test-{os.getpid()}-{secrets.token_hex(3)}:"


def app_config(database_url: str, redis_prefix: str, **overrides) -> dict:
    """The configuration every test app starts from."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "IDP_ISSUER": "http://localhost",
        "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
        "IDP_KEY_ENCRYPTION_KEY": "test-key-encryption-key-not-for-production-01",
        "IDP_REDIS_PREFIX": redis_prefix,
        "IDP_RATELIMIT_ENABLED": False,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def app(database_url, instance_dir, redis_prefix):
    """The application under test, its schema built by the migrations (never create_all)."""
    os.environ["IDP_INSTANCE_PATH"] = str(instance_dir)
    application = create_app(app_config(database_url, redis_prefix))
    with application.app_context():
        from flask_migrate import upgrade

        upgrade()
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_database(request):
    """Give every test an empty database (rows only; the schema stays)."""
    yield
    if "app" in request.fixturenames:
        empty_database(request.getfixturevalue("app"))


def empty_database(application) -> None:
    """Delete every row of every table (the audit log's too); the schema stays."""
    with application.app_context():
        db.session.remove()
        tables = [t for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in tables)
                conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))
            else:
                for table in tables:
                    conn.execute(table.delete())
        application.extensions["idp_keyring"].invalidate()


@pytest.fixture
def app_without_database(redis_prefix):
    """An app whose database cannot be reached (nothing listens on its port)."""
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    return create_app(app_config(unreachable, redis_prefix))


@pytest.fixture
def redis_instances(app, database_url, redis_prefix):
    """Two more instances over the test database, sharing one fresh Redis namespace."""
    from tests.instances import dispose, make_instance

    prefix = f"{redis_prefix}instances-{secrets.token_hex(3)}:"
    pair = [make_instance(database_url, prefix) for _ in range(2)]
    yield pair
    dispose(*pair)


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


class LiveServer:
    """The app served over real HTTP on a loopback port, in a thread."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    """A threaded HTTP server for the test app; its URL is also the issuer during the test."""
    server = LiveServer(app)
    previous = app.config["IDP_ISSUER"]
    app.config["IDP_ISSUER"] = server.url
    server.start()
    yield server
    server.stop()
    app.config["IDP_ISSUER"] = previous


@pytest.fixture(scope="session")
def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")

"""The benchmark's browser-like clients, over real HTTP: the code flow and its empty floor."""

from __future__ import annotations

import pytest
from sqlalchemy import func

from bench import driver
from bench.flows import EMPTY_FLOW_PATHS
from idp.extensions import db
from idp.oauth.models import AuthorizationCode
from tests.conftest import LiveServer
from tests.factories import PASSWORD, make_org, make_user
from tests.oauth.conftest import HUB_REDIRECT, make_hub_clients


@pytest.fixture
def bench_server(bench_app):
    """The bench-mode app over HTTP, with a Client Hub user who belongs to one organization."""
    with bench_app.app_context():
        make_hub_clients()
        user = make_user("client", make_org("client"))
        email = user.email
        db.session.commit()
        server = LiveServer(bench_app)
        bench_app.config["IDP_ISSUER"] = server.url
        server.start()
        try:
            yield server, email
        finally:
            server.stop()
            db.session.remove()


def _jobs(server, email: str, clients: int, paths: tuple[str, ...] = ()) -> list[dict]:
    job = {
        "base_url": server.url,
        "hub": "client",
        "email": email,
        "password": PASSWORD,
        "client_id": "client-hub",
        "redirect_uri": HUB_REDIRECT,
        "paths": paths,
    }
    return [job] * clients


def _codes() -> tuple[int, int]:
    """(codes stored, codes exchanged)."""
    db.session.rollback()  # see what the server committed
    stored = db.session.scalar(db.select(func.count(AuthorizationCode.id)))
    used = db.session.scalar(
        db.select(func.count(AuthorizationCode.id)).where(AuthorizationCode.used_at.is_not(None))
    )
    return stored, used


def test_each_counted_round_trip_exchanged_one_real_code(bench_server, bench_app):
    server, email = bench_server
    figures = driver.run(_jobs(server, email, 2), seconds=1.0)
    assert figures["errors"]["status"] == 0, figures["last_error"]
    assert figures["requests"] > 0
    with bench_app.app_context():
        stored, used = _codes()
    assert stored == used == figures["requests"]


def test_the_empty_round_trip_stores_nothing(bench_server, bench_app):
    server, email = bench_server
    figures = driver.run(_jobs(server, email, 2, EMPTY_FLOW_PATHS), seconds=1.0)
    assert figures["errors"]["status"] == 0, figures["last_error"]
    assert figures["requests"] > 0
    with bench_app.app_context():
        assert _codes() == (0, 0)

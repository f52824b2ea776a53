import pytest
import sqlalchemy as sa

from idp import create_app
from tests.conftest import app_config


def test_healthz_says_the_process_is_up(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_readyz_says_ready_when_the_database_answers(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ready"}


def test_readyz_answers_503_with_retry_after_when_the_database_is_gone(redis_prefix, tmp_path):
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    app = create_app(app_config(unreachable, redis_prefix))
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == "database_unavailable"
    assert "Traceback" not in resp.get_data(as_text=True)


@pytest.mark.postgres
def test_after_the_database_drops_every_connection_requests_recover_by_themselves(app, client):
    from idp.extensions import db

    assert client.get("/readyz").status_code == 200
    with app.app_context():
        database = db.engine.url.database
        admin = sa.create_engine(
            db.engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
        admin.dispose()
    first = client.get("/readyz")
    assert first.status_code in (200, 503)
    if first.status_code == 503:
        assert first.headers["Retry-After"]
    assert client.get("/readyz").status_code == 200

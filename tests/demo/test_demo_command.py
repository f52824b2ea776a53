"""``idp demo`` writes known passwords and client secrets: never in production."""

from __future__ import annotations

from idp.accounts.models import User
from idp.extensions import db
from idp.oauth.models import OAuthClient


def test_the_demo_refuses_to_run_in_production_and_writes_nothing(app, monkeypatch):
    from idp.cli import main

    monkeypatch.setitem(app.config, "IDP_ENV", "production")

    result = app.test_cli_runner().invoke(main, ["demo"])

    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1
    assert "production" in result.output and "Traceback" not in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(OAuthClient)) == 0

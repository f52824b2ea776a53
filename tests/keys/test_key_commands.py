"""What ``idp keys rotate`` and ``idp keys revoke`` tell the operator: every key they made."""

from __future__ import annotations

from idp.cli import main
from idp.extensions import db
from idp.keys.models import SigningKey
from idp.keys.service import active_key, ensure_signing_key


def _run(app, *args: str):
    result = app.test_cli_runner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _since(row: SigningKey) -> str:
    return f"{row.activates_at.isoformat()}Z"


def test_rotate_names_the_first_key_it_made_for_an_algorithm_without_one(app, app_ctx):
    ensure_signing_key()  # ES256 signs; RS256 has no key yet
    db.session.remove()

    output = _run(app, "keys", "rotate")

    first = db.session.scalars(db.select(SigningKey).where(SigningKey.first_of == "RS256")).one()
    assert f"published {first.kid} (RS256, its first key); it signs from now ({_since(first)})" in (
        output
    )
    scheduled = db.session.scalars(
        db.select(SigningKey).where(SigningKey.activates_at > SigningKey.created_at)
    ).all()
    assert sorted(row.algorithm for row in scheduled) == ["ES256", "RS256"]
    for row in scheduled:
        assert f"published {row.kid} ({row.algorithm}); it signs from {_since(row)}" in output
    assert len(output.splitlines()) == 3


def test_rotate_names_only_the_scheduled_keys_when_every_algorithm_has_one(app, app_ctx):
    ensure_signing_key()
    ensure_signing_key("RS256")
    db.session.remove()

    output = _run(app, "keys", "rotate")

    assert "first key" not in output and "from now" not in output
    assert len(output.splitlines()) == 2


def test_revoke_names_the_replacement_key_and_since_when_it_signs(app, app_ctx):
    ensure_signing_key()
    leaked = active_key().kid
    db.session.remove()

    output = _run(app, "keys", "revoke", leaked, "--ticket", "INC-9", "--reason", "key leaked")

    replacement = active_key()
    assert replacement.kid != leaked
    assert output.splitlines() == [
        f"revoked {leaked} (ES256); no token it signed verifies any longer",
        f"published {replacement.kid} (ES256); it signs from now ({_since(replacement)})",
    ]

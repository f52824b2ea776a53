"""The audit log: append-only (ORM and PostgreSQL), read by admins, exported as JSON Lines."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from idp.audit.models import AppendOnlyViolation, AuditEvent
from idp.audit.service import record_event
from idp.cli import main
from idp.extensions import db
from idp.support.paging import encode_cursor
from idp.timeutil import utcnow
from tests.factories import bearer_for, make_org, make_user


@pytest.fixture
def admin_auth(app_ctx):
    org = make_org("support", "Support")
    admin = make_user("support", org, "admin")
    return bearer_for(admin, org)


def _event(action="account.disabled", actor="usr_a", target="usr_t", at=None, **extra):
    event = record_event(
        action, actor_type="user", actor_id=actor, target_type="user", target_id=target, **extra
    )
    if at is not None:
        event.occurred_at = at
    return event


def test_the_application_cannot_change_or_delete_an_event(app_ctx):
    event = _event(reason="first")
    db.session.commit()

    event.reason = "rewritten"
    with pytest.raises(AppendOnlyViolation):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEvent, event.id))
    with pytest.raises(AppendOnlyViolation):
        db.session.commit()
    db.session.rollback()
    assert db.session.get(AuditEvent, event.id).reason == "first"


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET reason = 'rewritten'", "DELETE FROM audit_events"],
)
def test_postgresql_refuses_update_and_delete(app_ctx, statement):
    _event(reason="first")
    db.session.commit()
    with db.engine.connect() as conn:
        assert conn.dialect.name == "postgresql"
        with pytest.raises(DBAPIError, match="append-only"):
            conn.execute(sa.text(statement))
        conn.rollback()
        assert conn.execute(sa.text("SELECT reason FROM audit_events")).scalar() == "first"


def test_admins_filter_events_by_actor_target_action_and_time(client, admin_auth):
    now = utcnow()
    _event("account.disabled", "usr_alice", "usr_one", at=now - timedelta(hours=3))
    _event("account.enabled", "usr_alice", "usr_one", at=now - timedelta(hours=2))
    _event("account.disabled", "usr_bob", "usr_two", at=now - timedelta(hours=1))
    db.session.commit()

    def actions(**args):
        resp = client.get("/v1/audit-events", query_string=args, headers=admin_auth)
        assert resp.status_code == 200, resp.json
        return [
            (e["action"], e["actor_id"], e["target_id"])
            for e in resp.json["items"]
            if e["actor_id"] in {"usr_alice", "usr_bob"}
        ]

    assert actions(actor="usr_alice") == [
        ("account.enabled", "usr_alice", "usr_one"),
        ("account.disabled", "usr_alice", "usr_one"),
    ]
    assert actions(target="usr_two") == [("account.disabled", "usr_bob", "usr_two")]
    assert actions(action="account.disabled") == [
        ("account.disabled", "usr_bob", "usr_two"),
        ("account.disabled", "usr_alice", "usr_one"),
    ]
    since = (now - timedelta(hours=2, minutes=30)).isoformat() + "Z"
    until = (now - timedelta(minutes=30)).isoformat() + "+00:00"
    assert [a for a, _, _ in actions(since=since, until=until)] == [
        "account.disabled",
        "account.enabled",
    ]


def test_pages_follow_a_cursor_newest_first(client, admin_auth):
    now = utcnow()
    for n in range(7):
        _event("account.enabled", f"usr_{n}", at=now - timedelta(minutes=10 - n))
    db.session.commit()
    seen, cursor = [], None
    while True:
        args = {"action": "account.enabled", "limit": 3} | ({"cursor": cursor} if cursor else {})
        body = client.get("/v1/audit-events", query_string=args, headers=admin_auth).json
        seen += [e["actor_id"] for e in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [f"usr_{n}" for n in reversed(range(7))]


def test_bad_filters_are_422(client, admin_auth):
    for args in ({"since": "yesterday"}, {"colour": "red"}, {"limit": 0}, {"cursor": "x"}):
        resp = client.get("/v1/audit-events", query_string=args, headers=admin_auth)
        assert resp.status_code == 422, args


def test_an_action_the_service_never_records_is_422_not_an_empty_page(client, admin_auth):
    _event("account.disabled")
    db.session.commit()

    resp = client.get(
        "/v1/audit-events", query_string={"action": "account.disabeld"}, headers=admin_auth
    )

    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    assert list(resp.get_json()["errors"]) == ["action"]


def test_a_cursor_holding_a_control_character_is_not_a_cursor(client, admin_auth):
    _event(at=utcnow() - timedelta(hours=1))
    db.session.commit()
    forged = encode_cursor([utcnow().isoformat(), "evt_\u0000"])  # no id holds a NUL

    resp = client.get("/v1/audit-events", query_string={"cursor": forged}, headers=admin_auth)

    assert resp.status_code == 422
    assert resp.get_json()["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "args",
    [{"since": "9999-12-31T23:59:59-12:00"}, {"until": "0001-01-01T00:00:00+12:00"}],
)
def test_a_time_outside_the_utc_calendar_is_422_not_500(client, admin_auth, args):
    resp = client.get("/v1/audit-events", query_string=args, headers=admin_auth)
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    assert set(resp.get_json()["errors"]) == set(args)


def test_agents_cannot_read_the_audit_log(client, app_ctx):
    org = make_org("support", "Support")
    agent = make_user("support", org, "agent")
    resp = client.get("/v1/audit-events", headers=bearer_for(agent, org))
    assert resp.status_code == 403


def test_export_writes_json_lines(app, app_ctx, tmp_path):
    now = utcnow()
    _event("account.disabled", "usr_x", ticket="SUP-1", reason="why", at=now - timedelta(hours=1))
    _event("account.enabled", "usr_x", at=now)
    _event("account.enabled", "usr_y", at=now)
    db.session.commit()
    out = tmp_path / "audit.jsonl"

    result = app.test_cli_runner().invoke(
        main, args=["audit", "export", "--actor", "usr_x", "--output", str(out)]
    )

    assert result.exit_code == 0, result.output
    rows = [json.loads(text) for text in out.read_text().splitlines()]
    assert [(r["action"], r["ticket"], r["reason"]) for r in rows] == [
        ("account.disabled", "SUP-1", "why"),
        ("account.enabled", None, None),
    ]
    assert rows[0]["occurred_at"].endswith("Z")
    assert "exported 2 events" in result.output


def test_export_refuses_an_action_the_service_never_records(app, app_ctx, tmp_path):
    _event("account.disabled")
    db.session.commit()
    out = tmp_path / "audit.jsonl"

    result = app.test_cli_runner().invoke(
        main, args=["audit", "export", "--action", "account.disabeld", "--output", str(out)]
    )

    assert result.exit_code == 2, result.output
    assert "--action" in result.output and "account.disabeld" in result.output
    assert not out.exists() or out.read_text() == ""

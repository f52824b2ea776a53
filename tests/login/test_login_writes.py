"""A password login writes the account's last login, its login session and its audit event.

On PostgreSQL the three go in one statement (one round trip); on SQLite the
session writes them. Either way each login leaves exactly these rows, with
the same time on the account and the login, and the event of this request.
"""

from __future__ import annotations

import pytest
import redis
import sqlalchemy as sa

from idp import changes
from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.counter_readings import redis_key
from idp.extensions import db
from idp.login.models import LoginSession
from tests.conftest import REDIS_URL
from tests.factories import PASSWORD
from tests.instances import Reads
from tests.mfa.helpers import code_at, enrol, password_then, second_step
from tests.oauth.conftest import BrowserClient, csrf_from

WRITTEN = ("users", "login_sessions", "audit_events")


class Statements(Reads):
    """The statements the app's engine sends while inside (BEGIN and COMMIT are not sent so)."""

    def __init__(self, app):
        super().__init__(app, "")
        self.sent: list[str] = []

    def _seen(self, conn, cursor, statement, *_):
        self.sent.append(" ".join(statement.split()))

    def writing(self) -> list[str]:
        """Those that write one of the login's tables."""
        verbs = ("INSERT INTO ", "UPDATE ")
        return [s for s in self.sent if any(f"{v}{t}" in s for v in verbs for t in WRITTEN)]


def log_in(app, email: str, address: str = "198.51.100.4"):
    browser = BrowserClient(app)
    browser.client.environ_base["REMOTE_ADDR"] = address
    page = browser.get("/login?hub=partner")
    with Statements(app) as statements:
        response = browser.post(
            "/login?hub=partner",
            data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
        )
    assert response.status_code == 302, response.text
    return browser, response, statements


def _rows(user_id: str) -> tuple[User, list[LoginSession], list[AuditEvent]]:
    db.session.expire_all()
    logins = db.session.scalars(sa.select(LoginSession).where(LoginSession.user_id == user_id))
    events = db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.action == "login.succeeded", AuditEvent.actor_id == user_id
        )
    )
    return db.session.get(User, user_id), list(logins), list(events)


def test_each_login_leaves_the_account_its_login_and_its_event(app, partner_world):
    owner = partner_world["owner"]
    for round_ in (1, 2):
        _, response, _ = log_in(app, owner.email)

        user, logins, events = _rows(owner.id)
        assert (len(logins), len(events)) == (round_, round_)
        newest = max(logins, key=lambda login: login.created_at)
        assert user.last_login_at == newest.created_at
        assert newest.ip_address == "198.51.100.4" and newest.ended_at is None
        event = max(events, key=lambda e: e.occurred_at)
        assert (event.target_type, event.target_id, event.actor_type) == ("user", owner.id, "user")
        assert event.ip == "198.51.100.4"
        assert event.request_id == response.headers["X-Request-Id"]


@pytest.mark.postgres
def test_on_postgresql_a_login_writes_its_three_rows_in_one_statement(app, partner_world):
    owner = partner_world["owner"]

    _, _, statements = log_in(app, owner.email)

    writes = statements.writing()
    assert len(writes) == 1, writes
    (write,) = writes
    # The account's row first: its UPDATE feeds the login's INSERT, which feeds the event's.
    assert write.startswith("WITH account AS (UPDATE users SET last_login_at")
    assert "INSERT INTO login_sessions" in write and "INSERT INTO audit_events" in write
    assert write.index("UPDATE users") < write.index("INSERT INTO login_sessions")


@pytest.mark.postgres
def test_a_two_step_sign_in_writes_its_login_and_event_in_one_statement_too(app, partner_world):
    owner = partner_world["owner"]
    enrolling, _, _ = log_in(app, owner.email)
    secret, _ = enrol(enrolling)
    browser = BrowserClient(app)
    location = password_then(browser, owner.email, "/login?hub=partner").headers["Location"]

    with Statements(app) as statements:
        done = second_step(browser, location, code=code_at(secret))

    assert done.status_code == 302, done.text
    (write,) = statements.writing()
    assert write.startswith("WITH account AS (UPDATE users SET last_login_at")
    user, logins, events = _rows(owner.id)
    newest = max(logins, key=lambda login: login.created_at)
    assert user.last_login_at == newest.created_at
    assert max(events, key=lambda e: e.occurred_at).after == {"second_step": "totp"}


def test_a_refused_login_writes_no_login_and_leaves_the_last_login_as_it_was(app, partner_world):
    owner = partner_world["owner"]
    log_in(app, owner.email)
    before, logins_before, _ = _rows(owner.id)
    last_login = before.last_login_at

    browser = BrowserClient(app)
    page = browser.get("/login?hub=partner")
    refused = browser.post(
        "/login?hub=partner",
        data={"email": owner.email, "password": "not it", "csrf_token": csrf_from(page.text)},
    )

    assert refused.status_code == 401
    user, logins, events = _rows(owner.id)
    assert user.last_login_at == last_login
    assert [login.id for login in logins] == [login.id for login in logins_before]
    assert len(events) == 1


@pytest.mark.redis
def test_a_login_moves_the_change_counters_of_every_table_it_writes(
    redis_instances, partner_world, monkeypatch
):
    """As a flush would: a cache that came to read accounts or logins would hear of it."""
    watched = {
        "test-accounts": changes.Counter("test-accounts", frozenset({"users"}), frozenset()),
        "test-logins": changes.Counter(
            "test-logins", frozenset({"login_sessions"}), frozenset({"login_sessions"})
        ),
    }
    for name, counter in watched.items():
        monkeypatch.setitem(changes._COUNTERS, name, counter)
    instance, _ = redis_instances
    client = redis.Redis.from_url(REDIS_URL)
    with instance.test_request_context():
        keys = [redis_key(name) for name in watched]
        changes._versions()  # the counters exist before the login
    before = [int(client.get(key)) for key in keys]

    log_in(instance, partner_world["owner"].email)

    # Twice each: inside the transaction and after the commit, as for a flushed row.
    assert [int(client.get(key)) for key in keys] == [value + 2 for value in before]

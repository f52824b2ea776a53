"""An ``idp`` command's events name the operating-system user who ran it, as ``os_user``.

The actor stays the command (``system``, ``clients create-platform``); the
person at the terminal is in the event's ``after``, which the audit log API
and the support console show.
"""

from __future__ import annotations

import getpass
import html
import os
from urllib.parse import urlencode

import pytest

from idp.accounts.models import User
from idp.cli import main
from idp.extensions import db
from idp.orgs.models import Organization
from tests.factories import bearer_for
from tests.support.test_console_pages import _sign_in
from tests.support.test_refusals_on_record import people  # noqa: F401

COMMAND = "clients create-platform"


@pytest.fixture
def login(monkeypatch):
    """The terminal's login, as the operating system tells it to a program."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME", "SUDO_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOGNAME", "ada.ops")
    return "ada.ops"


def create_platform(app) -> None:
    args = ["clients", "create-platform", "--name", "Billing", "--scope", "channels:read"]
    result = app.test_cli_runner().invoke(main, args)
    assert result.exit_code == 0, result.output


def admin_auth(app, people) -> dict:  # noqa: F811
    with app.app_context():
        admin = db.session.get(User, people["admin"])
        support = db.session.scalars(db.select(Organization).where(Organization.kind == "support"))
        return bearer_for(admin, support.one())


def api_events(app, people, **filters) -> list[dict]:  # noqa: F811
    auth = admin_auth(app, people)
    response = app.test_client().get("/v1/audit-events", query_string=filters, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_the_api_and_the_console_show_who_ran_the_command(app, people, login):  # noqa: F811
    create_platform(app)

    [event] = api_events(app, people, actor=COMMAND)
    assert (event["action"], event["actor_type"], event["actor_id"]) == (
        "oauth_client.created",
        "system",
        COMMAND,
    )
    assert event["after"]["os_user"] == "ada.ops"

    browser = app.test_client()
    _sign_in(browser, "support", "admin@support.example")
    page = browser.get("/support/audit?" + urlencode({"actor": COMMAND}))
    assert page.status_code == 200
    assert '"os_user": "ada.ops"' in html.unescape(page.text)


def test_a_command_run_through_sudo_names_the_person_too(app, people, login, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOGNAME", "root")
    monkeypatch.setenv("SUDO_USER", "ada.ops")
    create_platform(app)
    [event] = api_events(app, people, actor=COMMAND)
    assert event["after"]["os_user"] == "ada.ops (sudo as root)"


def test_without_a_login_name_the_user_id_is_recorded(app, people, login, monkeypatch):  # noqa: F811
    def nameless():
        raise OSError("no login name for this user id")  # a container's uid without a name

    monkeypatch.setattr(getpass, "getuser", nameless)
    create_platform(app)
    [event] = api_events(app, people, actor=COMMAND)
    assert event["after"]["os_user"] == f"uid {os.getuid()}"


def test_events_of_requests_name_no_os_user(app, people, login):  # noqa: F811
    create_platform(app)  # a command first: what it set must not outlive it
    auth = admin_auth(app, people)
    owner = people["owner"]
    disabled = app.test_client().post(
        f"/v1/support/accounts/{owner}/disable",
        json={"ticket": "SUP-1", "reason": "reported compromised"},
        headers=auth,
    )
    assert disabled.status_code == 200, disabled.get_json()
    [event] = api_events(app, people, action="account.disabled")
    assert "os_user" not in (event["after"] or {})

"""Every page that needs a signed-in person offers to sign out, and the offer works."""

from __future__ import annotations

import re

import pytest

from idp.extensions import db
from tests.factories import make_org, make_user
from tests.test_hostile_forms import login

SIGN_OUT_FORM = re.compile(
    r'<form method="post" action="/logout">\s*'
    r'<input type="hidden" name="csrf_token" value="([^"]+)">\s*'
    r'<button type="submit"[^>]*>Sign out</button>',
)


@pytest.fixture
def people(app):
    with app.app_context():
        support = make_org("support", "Support")
        admin = make_user("support", support, "admin", email="admin@support.example")
        bakery = make_org("client", "Blue Bakery")
        owner = make_user("client", bakery, "owner", email="owner@bakery.example")
        db.session.commit()
        return {"admin": (admin.email, admin.id), "owner": (owner.email, owner.id)}


def _sign_out_from(browser, path: str) -> None:
    """Open ``path``, press its Sign out button, and check that the browser is signed out."""
    page = browser.get(path)
    assert page.status_code == 200, page.text
    form = SIGN_OUT_FORM.search(page.text)
    assert form is not None, f"{path} offers no sign-out"
    resp = browser.post("/logout", data={"csrf_token": form.group(1)})
    assert resp.status_code == 200 and "You are signed out." in resp.text
    assert browser.get(path).status_code == 302  # to the login page


@pytest.mark.parametrize(
    "path",
    [
        "/login/done",
        "/account/password",
        "/account/sessions",
        "/account/two-step",
        "/client/connected-partners",
    ],
)
def test_a_person_signs_out_from_their_account_pages(app, people, path):
    browser = login(app, people["owner"][0], "client")
    _sign_out_from(browser, path)


@pytest.mark.parametrize(
    "path",
    ["/support/", "/support/conflicts", "/support/audit", "/support/accounts/{owner}"],
)
def test_support_staff_sign_out_from_every_console_page(app, people, path):
    browser = login(app, people["admin"][0], "support")
    _sign_out_from(browser, path.format(owner=people["owner"][1]))

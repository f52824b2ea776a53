"""Concurrent replays over real HTTP: of two simultaneous uses only one may win."""

from __future__ import annotations

import threading

import requests

from idp.extensions import db
from idp.oauth.models import TokenFamily
from tests.oauth.conftest import tokens_for


def _at_once(call, attempts: int = 2) -> list:
    """What ``call`` returns, called from ``attempts`` threads released together."""
    barrier = threading.Barrier(attempts)
    results: list = []

    def run():
        barrier.wait()
        results.append(call())

    threads = [threading.Thread(target=run) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _race(url: str, data: dict, attempts: int = 2) -> list[requests.Response]:
    return _at_once(lambda: requests.post(url, data=data, timeout=20), attempts)


def test_two_simultaneous_refreshes_cannot_both_succeed(app, live_server, partner_world, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    results = _race(
        f"{live_server.url}/oauth/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "partner-hub",
        },
    )
    assert sorted(r.status_code for r in results) == [200, 400]
    loser = next(r for r in results if r.status_code == 400)
    assert loser.json()["error"] == "invalid_grant"
    # The loser presented a rotated token: the whole family, winner included, is revoked.
    db.session.expire_all()
    assert all(f.revoked_at is not None for f in db.session.scalars(db.select(TokenFamily)))


def test_two_simultaneous_code_exchanges_cannot_both_succeed(app, live_server, partner_world, flow):
    code = flow.code_for(partner_world["owner"].email)
    results = _race(
        f"{live_server.url}/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "client_id": flow.client_id,
            "code_verifier": flow.verifier,
        },
    )
    assert sorted(r.status_code for r in results) == [200, 400]


def test_two_simultaneous_sign_ins_with_one_nonce_get_one_code(app, live_server, partner_world):
    from urllib.parse import urlencode

    from tests.factories import PASSWORD
    from tests.oauth.conftest import HUB_REDIRECT, Flow, csrf_from, query_of

    browser = requests.Session()
    flow = Flow(browser, nonce="once-only")
    authorize_url = f"{live_server.url}/oauth/authorize?{urlencode(flow.params())}"
    login_url = f"{live_server.url}/login?hub=partner"
    page = browser.get(login_url, timeout=10)
    form = {"email": partner_world["owner"].email, "password": PASSWORD}
    form["csrf_token"] = csrf_from(page.text)
    assert browser.post(login_url, data=form, allow_redirects=False, timeout=10).ok
    locations = _at_once(
        lambda: browser.get(authorize_url, allow_redirects=False, timeout=20).headers["Location"]
    )
    answers = [query_of(location) for location in locations]
    assert all(location.startswith(HUB_REDIRECT) for location in locations)
    assert sorted("code" in answer for answer in answers) == [False, True]
    refused = next(answer for answer in answers if "code" not in answer)
    assert refused["error"] == "invalid_request"

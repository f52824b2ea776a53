"""One code, one sign-in: browsers sending the same code at the same instant.

Each browser types the password first, then all send one code (or one
recovery code) through a barrier, against the app served over real HTTP.
The conditional UPDATE of the last step accepted (or of the recovery code's
``used_at``) lets exactly one of them in, on any number of instances.
"""

from __future__ import annotations

import threading

import pytest
import requests

from idp.extensions import db
from tests.factories import PASSWORD, make_org, make_user
from tests.mfa.helpers import code_at, enrol
from tests.oauth.conftest import csrf_from
from tests.test_hostile_forms import login

BROWSERS = 3  # the per-address throttle lets three misses through before it waits
EMAIL = "bea@bakery.example"


def _race(base: str, fields: dict) -> list[int]:
    """Sign in with the password in each browser, then send ``fields`` from all at once."""
    barrier = threading.Barrier(BROWSERS)
    statuses = [0] * BROWSERS

    def browse(index: int) -> None:
        with requests.Session() as browser:
            page = browser.get(f"{base}/login", timeout=30)
            data = {"email": EMAIL, "password": PASSWORD, "csrf_token": csrf_from(page.text)}
            asked = browser.post(f"{base}/login", data=data, timeout=30)
            assert asked.url.endswith("/login/two-step"), asked.url
            token = csrf_from(asked.text)
            barrier.wait(timeout=30)
            sent = browser.post(
                f"{base}/login/two-step",
                data={"csrf_token": token, **fields},
                allow_redirects=False,
                timeout=60,
            )
            statuses[index] = sent.status_code

    threads = [threading.Thread(target=browse, args=(i,)) for i in range(BROWSERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return statuses


@pytest.fixture
def enrolled(app):
    with app.app_context():
        make_user("client", make_org("client", "Blue Bakery"), email=EMAIL)
        db.session.commit()
        db.session.remove()
    return enrol(login(app, EMAIL))


@pytest.mark.postgres
def test_one_code_sent_at_once_from_several_browsers_lets_one_in(app, live_server, enrolled):
    secret, _ = enrolled
    statuses = _race(live_server.url, {"code": code_at(secret, 1)})
    assert sorted(statuses) == [302] + [401] * (BROWSERS - 1), statuses


@pytest.mark.postgres
def test_one_recovery_code_sent_at_once_lets_one_in(app, live_server, enrolled):
    _, codes = enrolled
    statuses = _race(live_server.url, {"recovery_code": codes[0]})
    assert sorted(statuses) == [200] + [401] * (BROWSERS - 1), statuses

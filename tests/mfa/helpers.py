"""Turning two-step sign-in on through the account page, as a person does."""

from __future__ import annotations

import re
import time
from html import unescape

import pyotp

from tests.factories import PASSWORD
from tests.oauth.conftest import csrf_from

PAGE = "/account/two-step"
SECRET = re.compile(r'<code class="secret" id="secret">([A-Z2-7]+)</code>')
RECOVERY = re.compile(r"<li><code>([A-Z2-7-]+)</code></li>")


def code_at(secret: str, offset_steps: int = 0) -> str:
    """The app's code ``offset_steps`` steps of 30 seconds from now."""
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def post_step(browser, step: str, **fields):
    """Post one of the page's forms (``step``) with ``fields``."""
    token = csrf_from(browser.get(PAGE).text)
    return browser.post(PAGE, data={"csrf_token": token, "step": step, **fields})


def start(browser, password: str = PASSWORD):
    """Type the password to set up: the page shows the secret once."""
    return post_step(browser, "start", current_password=password)


def enrol(browser, **confirm) -> tuple[str, list[str]]:
    """Turn two-step sign-in on; the secret and the ten recovery codes shown once.

    ``confirm``: more fields of the confirmation form (``sign_out_others="yes"`` ticks
    its box; without it the box is sent unticked, as a browser sends it).
    """
    page = start(browser)
    assert page.status_code == 200, page.text
    secret = SECRET.search(page.text).group(1)
    done = post_step(browser, "confirm", code=code_at(secret, -1), **confirm)
    assert done.status_code == 200, done.text
    return secret, RECOVERY.findall(unescape(done.text))


def password_then(browser, email: str, path: str = "/login"):
    """Post the password at ``path`` (a login page); the answer (a redirect)."""
    page = browser.get(path)
    return browser.post(
        path, data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)}
    )


def second_step(browser, location: str, **fields):
    """Post the second step's form at ``location`` with ``code`` or ``recovery_code``."""
    page = browser.get(location)
    assert page.status_code == 200, page.text
    return browser.post(location, data={"csrf_token": csrf_from(page.text), **fields})

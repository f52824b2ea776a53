"""Two-step sign-in: set up with the app, sign in with a code or a recovery code, turn off."""

from __future__ import annotations

import time

import jwt
import sqlalchemy as sa

import idp.login.second_step as second_step_state
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.login.models import LoginSession
from idp.mfa.models import RecoveryCode, TwoStepSecret
from idp.oauth.models import AuthorizationCode
from idp.outbox.models import OutboxMessage
from tests.factories import PASSWORD, make_org, make_user
from tests.mfa.helpers import (
    PAGE,
    SECRET,
    code_at,
    enrol,
    password_then,
    post_step,
    second_step,
    start,
)
from tests.oauth.conftest import BrowserClient, Flow, csrf_from, query_of, refresh
from tests.test_hostile_forms import login


def _actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def _failures() -> list[str | None]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent.reason)
            .where(AuditEvent.action == "login.failed")
            .order_by(AuditEvent.id)
        )
    )


def _subjects(email: str) -> list[str]:
    return list(
        db.session.scalars(sa.select(OutboxMessage.subject).where(OutboxMessage.recipient == email))
    )


def _signed_in(browser) -> bool:
    return browser.get("/login/done").status_code == 200


def test_setting_up_shows_the_secret_once_and_needs_a_code_from_the_app(app, partner_world):
    owner = partner_world["owner"]
    browser = login(app, owner.email)

    wrong = start(browser, "not the password")
    assert wrong.status_code == 401
    assert 'aria-invalid="true"' in wrong.text and "secret" not in wrong.text
    assert _failures() == ["bad_credentials"]

    page = start(browser)
    assert page.status_code == 200
    secret = SECRET.search(page.text).group(1)
    assert "<svg" in page.text and 'aria-label="QR code' in page.text
    # Stored sealed, not in clear; not on again until a code from the app is typed.
    row = db.session.get(TwoStepSecret, owner.id)
    assert secret not in row.sealed_secret and row.enabled_at is None
    assert secret not in browser.get(PAGE).text

    refused = post_step(browser, "confirm", code="000000" if code_at(secret) != "000000" else "1")
    assert refused.status_code == 422
    assert 'aria-invalid="true"' in refused.text and secret not in refused.text
    db.session.expire_all()
    assert db.session.get(TwoStepSecret, owner.id).enabled_at is None

    done = post_step(browser, "confirm", code=code_at(secret))
    assert done.status_code == 200
    assert "Two-step sign-in is on" in done.text
    assert done.text.count("<li><code>") == 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)) == 10
    assert "account.two_step_enabled" in _actions()
    assert any("turned on" in s for s in _subjects(owner.email))
    status = browser.get(PAGE).text
    assert "10 recovery codes left" in status and secret not in status


def test_the_password_alone_no_longer_signs_in(app, partner_world):
    owner = partner_world["owner"]
    secret, _ = enrol(login(app, owner.email))
    browser = BrowserClient(app)

    asked = password_then(browser, owner.email, "/login?next=/account/two-step")
    assert asked.status_code == 302
    location = asked.headers["Location"]
    assert location.startswith("/login/two-step") and "next=" in location
    assert not _signed_in(browser)
    logins = db.session.scalar(sa.select(sa.func.count()).select_from(LoginSession))

    wrong = second_step(browser, location, code="123456" if code_at(secret) != "123456" else "1")
    assert wrong.status_code == 401
    assert 'aria-invalid="true"' in wrong.text
    assert _failures()[-1] == "two_step_wrong_code"
    assert not _signed_in(browser)

    done = second_step(browser, location, code=code_at(secret))
    assert done.status_code == 302 and done.headers["Location"] == "/account/two-step"
    assert _signed_in(browser)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginSession)) == logins + 1
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "login.succeeded").order_by(AuditEvent.id)
    ).all()[-1]
    assert event.after == {"second_step": "totp"}


def test_a_set_up_never_confirmed_asks_for_no_code(app, partner_world):
    owner = partner_world["owner"]
    assert start(login(app, owner.email)).status_code == 200  # a secret shown, no code typed
    browser = BrowserClient(app)

    signed_in = password_then(browser, owner.email, "/login?next=/account/two-step")
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == "/account/two-step"
    assert _signed_in(browser)


def test_a_code_is_accepted_once(app, partner_world):
    owner = partner_world["owner"]
    secret, _ = enrol(login(app, owner.email))
    first = BrowserClient(app)
    location = password_then(first, owner.email).headers["Location"]
    code = code_at(secret)
    assert second_step(first, location, code=code).status_code == 302

    again = BrowserClient(app)
    location = password_then(again, owner.email).headers["Location"]
    replay = second_step(again, location, code=code)
    assert replay.status_code == 401 and "used already" in replay.text
    earlier = second_step(again, location, code=code_at(secret, -1))
    assert earlier.status_code == 401
    assert _failures()[-2:] == ["two_step_code_reused", "two_step_code_reused"]
    # The next step's code (a clock running a little ahead) is still good.
    assert second_step(again, location, code=code_at(secret, 1)).status_code == 302


def test_wrong_codes_are_slowed_down_per_account(app, partner_world):
    owner = partner_world["owner"]
    secret, _ = enrol(login(app, owner.email))
    browser = BrowserClient(app)
    location = password_then(browser, owner.email).headers["Location"]
    wrong = "111111" if code_at(secret) != "111111" else "222222"
    statuses = [second_step(browser, location, code=wrong).status_code for _ in range(5)]
    # Three free misses from this browser's address, then a wait (the account's too).
    assert statuses == [401, 401, 401, 429, 429]
    throttled = second_step(browser, location, code=code_at(secret))
    assert throttled.status_code == 429 and throttled.headers["Retry-After"]
    assert "two_step_throttled" in _failures()
    assert not _signed_in(browser)


def test_a_recovery_code_signs_in_once_and_the_page_says_how_many_are_left(app, partner_world):
    owner = partner_world["owner"]
    _, codes = enrol(login(app, owner.email))
    browser = BrowserClient(app)
    location = password_then(browser, owner.email).headers["Location"]

    done = second_step(browser, location, recovery_code=codes[3].lower())
    assert done.status_code == 200
    assert "9 recovery codes left" in done.text
    assert _signed_in(browser)
    used = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "login.recovery_code_used")
    ).one()
    assert used.after["recovery_codes_left"] == 9 and codes[3] not in str(used.after)

    other = BrowserClient(app)
    location = password_then(other, owner.email).headers["Location"]
    again = second_step(other, location, recovery_code=codes[3])
    assert again.status_code == 401 and "recovery_code" in again.text
    assert _failures()[-1] == "recovery_code_wrong"
    assert not _signed_in(other)


def test_the_second_step_cannot_be_reached_without_the_password(app, partner_world):
    owner = partner_world["owner"]
    secret, _ = enrol(login(app, owner.email))
    browser = BrowserClient(app)
    assert browser.get("/login/two-step").status_code == 302
    # A form posted without a password accepted in this browser signs nobody in.
    token = csrf_from(browser.get("/login").text)
    resp = browser.post("/login/two-step", data={"csrf_token": token, "code": code_at(secret)})
    assert resp.status_code == 401 and "Sign in again" in resp.text
    assert not _signed_in(browser)


def test_a_waiting_second_step_expires(app, partner_world, monkeypatch):
    owner = partner_world["owner"]
    secret, _ = enrol(login(app, owner.email))
    browser = BrowserClient(app)
    location = password_then(browser, owner.email).headers["Location"]
    token = csrf_from(browser.get(location).text)
    monkeypatch.setattr(second_step_state, "SECOND_STEP_TTL", -1)  # five minutes later

    late = browser.post(location, data={"csrf_token": token, "code": code_at(secret)})
    assert late.status_code == 401 and "Sign in again" in late.text
    assert not _signed_in(browser)
    assert browser.get(location).status_code == 302


def _tokens(flow: Flow, response) -> dict:
    """Follow ``response`` to the hub's redirect; the token response of the code exchanged."""
    while "code=" not in response.headers.get("Location", ""):
        assert response.status_code == 302, response.text
        response = flow.http.get(response.headers["Location"])
    tokens = flow.exchange(query_of(response.headers["Location"])["code"]).get_json()
    assert "id_token" in tokens, tokens
    return tokens


def _claims(flow: Flow, response) -> dict:
    """Follow ``response`` to the hub's redirect; the ID token of the code exchanged."""
    return _id_claims(_tokens(flow, response))


def _hub_sign_in(app, email: str, secret: str | None) -> tuple[Flow, dict]:
    """A Client Hub sign-in (with the app's code when ``secret`` is given): its token response."""
    flow = Flow(BrowserClient(app), client_id="client-hub", nonce=f"nonce-{email}")
    response = flow.login(email)
    location = response.headers["Location"]
    if secret is not None:
        assert location.startswith("/login/two-step")
        response = second_step(flow.http, location, code=code_at(secret, 1))
    return flow, _tokens(flow, response)


def _id_token(app, email: str, secret: str | None) -> dict:
    """The ID token of a Client Hub sign-in (with the app's code when ``secret`` is given)."""
    return _id_claims(_hub_sign_in(app, email, secret)[1])


def _id_claims(tokens: dict) -> dict:
    return jwt.decode(tokens["id_token"], options={"verify_signature": False})


def test_hub_sign_in_through_authorize_asks_for_the_code_and_says_so_in_amr(
    app, app_ctx, hub_clients
):
    shop = make_org("client", "Shop")
    plain = make_user("client", shop, "owner")
    guarded = make_user("client", shop, "member")
    db.session.commit()
    secret, _ = enrol(login(app, guarded.email))

    assert _id_token(app, plain.email, None)["amr"] == ["pwd"]
    claims = _id_token(app, guarded.email, secret)
    assert claims["amr"] == ["pwd", "otp", "mfa"]


def test_the_id_token_of_a_refresh_still_says_the_sign_in_took_two_steps(app, app_ctx, hub_clients):
    guarded = make_user("client", make_org("client", "Shop"), "owner")
    db.session.commit()
    secret, _ = enrol(login(app, guarded.email))
    flow, tokens = _hub_sign_in(app, guarded.email, secret)
    db.session.execute(db.delete(AuthorizationCode))  # purged: the family remembers
    db.session.commit()

    refreshed = refresh(flow.http, tokens["refresh_token"], client_id="client-hub")
    assert refreshed.status_code == 200, refreshed.text
    claims = jwt.decode(refreshed.get_json()["id_token"], options={"verify_signature": False})
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["auth_time"] == _id_claims(tokens)["auth_time"]


def test_prompt_login_asks_for_the_code_again(app, app_ctx, hub_clients):
    shop = make_org("client", "Shop")
    guarded = make_user("client", shop, "owner")
    db.session.commit()
    browser = login(app, guarded.email)
    secret, _ = enrol(browser)
    flow = Flow(browser, client_id="client-hub")
    response = flow.authorize(prompt="login")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    asked = flow.login(guarded.email, login_response=response)
    assert asked.headers["Location"].startswith("/login/two-step")
    # Back at /oauth/authorize without the code: still no authorization code.
    resumed = browser.get("/oauth/authorize", query_string=flow.params(prompt="login"))
    assert "code=" not in resumed.headers.get("Location", "")
    done = second_step(browser, asked.headers["Location"], code=code_at(secret, 1))
    assert done.status_code == 302


def test_turning_off_needs_the_password_and_a_code(app, partner_world):
    owner = partner_world["owner"]
    browser = login(app, owner.email)
    secret, codes = enrol(browser)

    no_code = post_step(browser, "off", current_password=PASSWORD, code="")
    assert no_code.status_code == 422
    assert 'aria-describedby="off-code-error" autofocus' in no_code.text
    wrong_password = post_step(browser, "off", current_password="nope", code=code_at(secret, 1))
    assert wrong_password.status_code == 401
    # The reason is tied to the field of the form that was refused, which takes the focus.
    assert 'aria-describedby="off-password-error" autofocus' in wrong_password.text
    assert '<p class="error" id="off-password-error">' in wrong_password.text
    assert db.session.get(TwoStepSecret, owner.id) is not None

    off = post_step(browser, "off", current_password=PASSWORD, recovery_code=codes[0])
    assert off.status_code == 200 and "Two-step sign-in is off" in off.text
    db.session.expire_all()
    assert db.session.get(TwoStepSecret, owner.id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)) == 0
    assert "account.two_step_disabled" in _actions()
    assert any("turned off" in s for s in _subjects(owner.email))
    # The password alone signs in again.
    assert password_then(BrowserClient(app), owner.email).headers["Location"] == "/login/done"


def test_new_recovery_codes_replace_the_old_ones(app, partner_world):
    owner = partner_world["owner"]
    browser = login(app, owner.email)
    secret, old = enrol(browser)
    page = post_step(browser, "codes", current_password=PASSWORD, code=code_at(secret, 1))
    assert page.status_code == 200 and page.text.count("<li><code>") == 10
    assert "account.recovery_codes_regenerated" in _actions()
    other = BrowserClient(app)
    location = password_then(other, owner.email).headers["Location"]
    assert second_step(other, location, recovery_code=old[0]).status_code == 401


def _signed_in_with_a_code(app, email: str) -> tuple[BrowserClient, list[str]]:
    """Two-step sign-in turned on for ``email``, then a browser signed in with a code;
    that browser and the recovery codes."""
    secret, codes = enrol(login(app, email))
    browser = BrowserClient(app)
    location = password_then(browser, email).headers["Location"]
    assert second_step(browser, location, code=code_at(secret, 1)).status_code == 302
    return browser, codes


def test_once_two_step_is_off_a_password_sign_in_says_a_password_alone(app, app_ctx, hub_clients):
    """The same browser signs in again (``prompt=login``) after turning two-step sign-in off:
    its earlier second step says nothing of this sign-in."""
    guarded = make_user("client", make_org("client", "Shop"), "owner")
    db.session.commit()
    browser, codes = _signed_in_with_a_code(app, guarded.email)
    off = post_step(browser, "off", current_password=PASSWORD, recovery_code=codes[0])
    assert off.status_code == 200, off.text

    flow = Flow(browser, client_id="client-hub", nonce="nonce-after-off")
    claims = _claims(flow, flow.login(guarded.email, login_response=flow.authorize(prompt="login")))
    assert claims["amr"] == ["pwd"]
    assert claims["auth_time"] >= int(time.time()) - 5


def _sign_in_dated_earlier(browser) -> int:
    """Date this browser's sign-in ten minutes back; return that time."""
    earlier = int(time.time()) - 600
    with browser.client.session_transaction() as session:
        session["auth_time"] = earlier
    return earlier


def _change_password(browser) -> None:
    token = csrf_from(browser.get("/account/password").text)
    new = "a brand new passphrase for the shop"
    changed = browser.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "password": new,
            "password_confirm": new,
        },
    )
    assert changed.status_code == 200, changed.text


def test_a_password_change_keeps_the_second_step_dated_when_it_was_taken(app, app_ctx, hub_clients):
    """The change proves the password now; the code was typed ten minutes ago: the login
    keeps saying two steps, as of then. A login by password alone is dated now."""
    guarded = make_user("client", make_org("client", "Shop"), "owner")
    plain = make_user("client", make_org("client", "Kiosk"), "owner")
    db.session.commit()
    two_steps, _ = _signed_in_with_a_code(app, guarded.email)
    earlier = _sign_in_dated_earlier(two_steps)
    password_only = login(app, plain.email)
    _sign_in_dated_earlier(password_only)

    for browser in (two_steps, password_only):
        _change_password(browser)

    kept = _authorized(Flow(two_steps, client_id="client-hub", nonce="kept"))
    assert (kept["amr"], kept["auth_time"]) == (["pwd", "otp", "mfa"], earlier)
    fresh = _authorized(Flow(password_only, client_id="client-hub", nonce="fresh"))
    assert fresh["amr"] == ["pwd"] and fresh["auth_time"] >= int(time.time()) - 5


def _authorized(flow: Flow) -> dict:
    """The ID token of an authorization this browser's login gets without a prompt."""
    return _claims(flow, flow.authorize())

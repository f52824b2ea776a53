"""The login page: hub titles, CSRF, links, hub check, account status, session, next."""

from __future__ import annotations

import unicodedata

import bcrypt
import pytest

from idp.accounts.models import User
from idp.accounts.passwords import HASHER, hash_password, verify_password
from idp.audit.models import AuditEvent
from idp.extensions import db
from tests.factories import PASSWORD, make_org, make_user
from tests.oauth.conftest import csrf_from


def _post_login(browser, url: str, email: str, password: str = PASSWORD):
    page = browser.get(url)
    return browser.post(
        url, data={"email": email, "password": password, "csrf_token": csrf_from(page.text)}
    )


@pytest.mark.parametrize(
    ("client_id", "title"),
    [("partner-hub", "Partner Hub"), ("client-hub", "Client Hub"), ("support-console", "Support")],
)
def test_the_title_says_which_hub_is_entered(app, hub_clients, flow, client_id, title):
    flow.client_id = client_id
    page = flow.http.get(flow.authorize().headers["Location"])
    assert f"<title>Sign in to {title}</title>" in page.text
    assert 'name="email"' in page.text
    assert 'name="password"' in page.text
    assert 'name="csrf_token"' in page.text
    assert 'href="/password-reset' in page.text


def test_the_client_hub_page_offers_sign_up(app, browser):
    page = browser.get("/login?hub=client")
    assert "Client Hub" in page.text
    assert 'href="/signup' in page.text


def test_a_post_without_csrf_is_refused(app, partner_world, browser):
    response = browser.post(
        "/login?hub=partner", data={"email": partner_world["owner"].email, "password": PASSWORD}
    )
    assert response.status_code == 400
    assert browser.get_cookie("idp_session") is None or "uid" not in str(
        browser.get_cookie("idp_session")
    )


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(app, partner_world, browser):
    wrong = _post_login(browser, "/login?hub=partner", partner_world["owner"].email, "nope-nope")
    unknown = _post_login(browser, "/login?hub=partner", "nobody@partner.example", "nope-nope")
    assert wrong.status_code == unknown.status_code == 401
    assert "The email or password is wrong." in wrong.text
    assert "The email or password is wrong." in unknown.text
    actions = db.session.scalars(db.select(AuditEvent.action)).all()
    assert actions.count("login.failed") == 2


def test_a_user_of_another_hub_is_told_where_to_go_and_gets_no_token(
    app, hub_clients, partner_world, flow
):
    client_org = make_org("client", "Bakery")
    baker = make_user("client", client_org, "owner")
    db.session.commit()
    response = flow.login(baker.email)
    assert response.status_code == 403
    assert "Client Hub" in response.text
    assert "Sign in through the Client Hub instead" in response.text
    assert "code=" not in response.headers.get("Location", "")
    # No session was started either.
    again = type(flow)(flow.http, nonce="n2").authorize()
    assert "/login?" in again.headers["Location"]


@pytest.mark.parametrize("status", ["disabled", "email_conflict"])
def test_an_inactive_account_cannot_log_in(app, hub_clients, flow, status):
    user = make_user("partner", make_org("partner"), status=status)
    db.session.commit()
    response = flow.login(user.email)
    assert response.status_code == 403
    assert "cannot sign in" in response.text


def test_login_starts_a_new_session_with_safe_cookie_flags(app, partner_world, browser):
    browser.get("/login?hub=partner")
    before = browser.get_cookie("idp_session").value
    response = _post_login(browser, "/login?hub=partner", partner_world["owner"].email)
    assert response.status_code == 302
    cookie_header = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie_header
    assert "SameSite=Lax" in cookie_header
    assert browser.get_cookie("idp_session").value != before
    user = db.session.get(User, partner_world["owner"].id)
    assert user.last_login_at is not None
    assert "login.succeeded" in db.session.scalars(db.select(AuditEvent.action)).all()


def test_the_cookie_is_secure_when_served_over_https(app_ctx):
    from idp import create_app
    from tests.conftest import app_config

    https_app = create_app(
        app_config(
            app_ctx.config["SQLALCHEMY_DATABASE_URI"], "x:", IDP_ISSUER="https://idp.example"
        )
    )
    assert https_app.config["SESSION_COOKIE_SECURE"] is True
    assert app_ctx.config["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize(
    ("next_value", "expected"),
    [
        ("/support/accounts?q=x", "/support/accounts?q=x"),
        ("https://evil.example/", "/login/done"),
        ("//evil.example/", "/login/done"),
        ("/\\evil.example", "/login/done"),
        ("javascript:alert(1)", "/login/done"),
    ],
)
def test_next_is_only_followed_to_a_path_on_this_host(
    app, partner_world, browser, next_value, expected
):
    from urllib.parse import quote

    url = f"/login?hub=partner&next={quote(next_value, safe='')}"
    response = _post_login(browser, url, partner_world["owner"].email)
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_an_outdated_password_hash_is_upgraded_at_login(app, partner_world, browser):
    from argon2 import PasswordHasher

    owner = partner_world["owner"]
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    owner.password_hash = weak.hash(PASSWORD)
    db.session.commit()
    assert _post_login(browser, "/login?hub=partner", owner.email).status_code == 302
    stored = db.session.get(User, owner.id).password_hash
    assert not HASHER.check_needs_rehash(stored)


def test_a_stored_hash_too_costly_to_verify_is_a_wrong_password_and_never_run(
    app, partner_world, browser, monkeypatch
):
    from idp.accounts import legacy, passwords

    owner = partner_world["owner"]
    salt, digest = "c2FsdHNhbHRzYWx0c2FsdA", "aGFzaGhhc2hoYXNoaGFzaA"
    hostile = [
        "$2b$31$" + "a" * 53,  # 2^31 rounds: hours per attempt
        f"$argon2id$v=19$m=4194304,t=1,p=1${salt}${digest}",  # 4 GiB per attempt
        f"$argon2id$v=19$m=65536,t=1000,p=1${salt}${digest}",
    ]

    def refuse_hostile(stored):
        assert stored not in hostile, f"verified {stored}"  # fails fast rather than hanging

    class Spy:
        def __getattr__(self, name):
            return getattr(HASHER, name)

        def verify(self, stored, password):
            refuse_hostile(stored)
            return HASHER.verify(stored, password)

    monkeypatch.setattr(passwords, "HASHER", Spy())
    monkeypatch.setattr(legacy.bcrypt, "checkpw", lambda p, h: refuse_hostile(h.decode()))
    for stored in hostile:
        owner.password_hash = stored
        db.session.commit()

        response = _post_login(browser, "/login?hub=partner", owner.email)

        assert response.status_code == 401, stored
        assert "The email or password is wrong." in response.text


def test_a_changed_security_stamp_logs_the_browser_out(app, partner_world, browser):
    owner = partner_world["owner"]
    _post_login(browser, "/login?hub=partner", owner.email)
    assert browser.get("/login/done").status_code == 200
    owner.security_stamp = "f" * 32
    db.session.commit()
    assert browser.get("/login/done").status_code == 302


def test_logout_ends_the_session(app, partner_world, browser):
    _post_login(browser, "/login?hub=partner", partner_world["owner"].email)
    page = browser.get("/logout")
    browser.post("/logout", data={"csrf_token": csrf_from(page.text)})
    assert browser.get("/login/done").status_code == 302


def test_a_login_hint_prefills_the_email(app, hub_clients, flow):
    page = flow.http.get(flow.authorize(login_hint="pat@partners.example").headers["Location"])
    assert 'value="pat@partners.example"' in page.text


ACCENTED = unicodedata.normalize("NFC", "Crème brûlée à Zürich 7")
DECOMPOSED = unicodedata.normalize("NFD", ACCENTED)


@pytest.mark.parametrize("form", ["NFD", "NFC", "NFKD"])
def test_a_password_typed_in_another_unicode_form_logs_in(app, partner_world, browser, form):
    # Set with precomposed accents (NFC); another device or IME sends them decomposed (NFD).
    owner = partner_world["owner"]
    owner.password_hash = hash_password(ACCENTED)
    db.session.commit()
    typed = unicodedata.normalize(form, ACCENTED)
    assert _post_login(browser, "/login?hub=partner", owner.email, typed).status_code == 302


@pytest.mark.parametrize("scheme", ["argon2id", "bcrypt"])
def test_a_hash_of_the_password_as_typed_logs_in_and_is_rehashed_normalized(
    app, partner_world, browser, scheme
):
    # Hashes made before passwords were normalized (or imported) hold the typed form.
    owner = partner_world["owner"]
    if scheme == "bcrypt":
        raw = bcrypt.hashpw(DECOMPOSED.encode(), bcrypt.gensalt(4)).decode()
    else:
        raw = HASHER.hash(DECOMPOSED)
    owner.password_hash = raw
    db.session.commit()

    assert _post_login(browser, "/login?hub=partner", owner.email, DECOMPOSED).status_code == 302

    stored = db.session.get(User, owner.id).password_hash
    assert stored != raw and stored.startswith("$argon2id$")
    assert HASHER.verify(stored, ACCENTED)  # now the hash of the normalized form
    assert verify_password(stored, DECOMPOSED) and verify_password(stored, ACCENTED)


def test_a_wrong_password_costs_as_much_for_an_unknown_account(app_ctx, monkeypatch):
    # A typed password whose normalized form differs is tried in both forms; an
    # unknown account (no hash) must cost as many verifications, or the time
    # would tell which addresses have accounts.
    from argon2 import PasswordHasher

    calls = []
    real_verify = PasswordHasher.verify

    def counting_verify(self, stored, password):
        calls.append(stored)
        return real_verify(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    stored = hash_password(ACCENTED)
    for typed in ("plain wrong password", "ｗｉｄｅ wrong password"):
        calls.clear()
        assert not verify_password(stored, typed)
        known = len(calls)
        calls.clear()
        assert not verify_password(None, typed)
        assert len(calls) == known, typed


def test_a_cookie_copied_before_the_password_is_typed_again_is_dead_after_it(
    app, partner_world, browser
):
    email = partner_world["owner"].email
    _post_login(browser, "/login?hub=partner", email)
    copied = browser.get_cookie("idp_session").value

    # Typing the password again (as prompt=login or max_age asks) starts a new login.
    token = csrf_from(browser.get("/logout").text)
    data = {"email": email, "password": PASSWORD, "csrf_token": token}
    assert browser.post("/login?hub=partner", data=data).status_code == 302

    assert browser.get("/login/done").status_code == 200
    browser.client.set_cookie("idp_session", copied)  # the copy of the earlier login
    assert browser.get("/login/done").status_code == 302


@pytest.mark.parametrize("path", ["/login/done", "/account/password", "/account/sessions"])
def test_a_signed_in_page_is_never_stored_for_the_back_button(app, partner_world, browser, path):
    _post_login(browser, "/login?hub=partner", partner_world["owner"].email)
    page = browser.get(path)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"

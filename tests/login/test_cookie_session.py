"""The session cookie: signed and read for the pages that use it, never set for API calls."""

from __future__ import annotations

from tests.oauth.conftest import csrf_from


def test_an_api_call_without_a_cookie_gets_no_cookie(client):
    response = client.get("/v1/api-keys/check", headers={"D360-API-KEY": "d360_not-a-key"})
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


def _wrong_password_after_the_page(client):
    page = client.get("/login?hub=client")
    assert "idp_session=" in page.headers["Set-Cookie"]
    form = {
        "email": "nobody@shop.example",
        "password": "x" * 12,
        "csrf_token": csrf_from(page.text),
    }
    return client.post("/login?hub=client", data=form)


def test_a_page_signs_its_session_and_reads_it_back(client):
    # The CSRF token is honoured (401, not 400) only if the session cookie is read back.
    assert _wrong_password_after_the_page(client).status_code == 401


def test_a_forged_cookie_is_replaced_by_a_fresh_session(client):
    client.set_cookie("idp_session", "eyJ1aWQiOiJ1c3JfYWRtaW4ifQ.forged.signature")
    assert _wrong_password_after_the_page(client).status_code == 401


def test_a_live_session_is_re_signed_at_most_once_a_minute_and_still_slides(
    partner_world, flow, monkeypatch
):
    import time
    from types import SimpleNamespace

    from idp.login import session as session_module
    from tests.oauth.conftest import tokens_for

    tokens_for(flow, partner_world["owner"].email)
    flow.http.get("/login/done")  # its logout form writes a CSRF token to the session
    quiet = flow.http.get("/login/done")
    assert quiet.status_code == 200
    assert "Set-Cookie" not in quiet.headers
    a_minute_on = time.time() + session_module.REFRESH_AFTER + 1
    monkeypatch.setattr(session_module, "time", SimpleNamespace(time=lambda: a_minute_on))
    slid = flow.http.get("/login/done")
    assert slid.status_code == 200
    assert "idp_session=" in slid.headers["Set-Cookie"]
    assert "Expires=" in slid.headers["Set-Cookie"]

"""The authorization endpoint under odd requests: re-authentication, bad parameters, silence.

``prompt=login`` and ``max_age`` hold on every page that could answer the
request; a parameter sent twice, a request object, a malformed ``max_age``
and ``prompt=none`` without a session are errors at the client's redirect URI.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from idp.consent.models import ConsentGrant
from idp.extensions import db
from idp.keys.service import verify_jwt
from tests.consent.factories import CONSENT_REDIRECT, make_consent_client
from tests.factories import PASSWORD, make_channel, make_org, make_user
from tests.oauth.conftest import (
    HUB_REDIRECT,
    Flow,
    csrf_from,
    error_at,
    make_partner_client,
    query_of,
    tokens_for,
)


def _is_login_page_of(response, request_id: str) -> None:
    """``response`` sends the browser to the login page of the pending ``request_id``."""
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == f"/login?request_id={request_id}"


def _pending_id(response) -> str:
    """The id of the request the login page was asked to serve."""
    location = response.headers["Location"]
    assert location.startswith("/login?request_id="), location
    return query_of(location)["request_id"]


def _type_password(flow: Flow, request_id: str, email: str):
    """Type the password on the login page of ``request_id`` and follow to the answer."""
    login_url = f"/login?request_id={request_id}"
    page = flow.http.get(login_url)
    response = flow.http.post(
        login_url, data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)}
    )
    while "/oauth/authorize/resume/" in response.headers.get("Location", ""):
        response = flow.http.get(response.headers["Location"])
    return response


@pytest.fixture
def signed_in(app, partner_world, flow):
    """The owner signed in ten minutes ago, in the browser of ``flow``."""
    tokens_for(flow, partner_world["owner"].email)
    with flow.http.client.session_transaction() as session:
        session["auth_time"] = int(time.time()) - 600
    return partner_world["owner"]


# Re-authentication (OpenID Connect Core 3.1.2.1)


@pytest.mark.parametrize("asked", [{"prompt": "login"}, {"max_age": "60"}])
def test_resuming_a_request_that_asked_for_the_password_goes_back_to_the_login_page(
    signed_in, flow, asked
):
    again = type(flow)(flow.http, nonce="again")
    request_id = _pending_id(again.authorize(**asked))
    resumed = flow.http.get(f"/oauth/authorize/resume/{request_id}")
    _is_login_page_of(resumed, request_id)
    page = flow.http.get(resumed.headers["Location"])
    assert 'name="password"' in page.text


@pytest.mark.parametrize("asked", [{"prompt": "login"}, {"max_age": "60"}])
def test_after_the_password_the_code_carries_a_fresh_auth_time(signed_in, flow, asked):
    again = type(flow)(flow.http, nonce="again")
    request_id = _pending_id(again.authorize(**asked))
    flow.http.get(f"/oauth/authorize/resume/{request_id}")
    answer = _type_password(again, request_id, signed_in.email)
    tokens = again.exchange(query_of(answer.headers["Location"])["code"]).get_json()
    claims = verify_jwt(tokens["id_token"], audience="partner-hub")
    assert claims["auth_time"] >= int(time.time()) - 5


def test_the_organization_picker_answers_no_request_that_asked_for_the_password(
    app, partner_world, flow
):
    consultant = partner_world["consultant"]
    tokens_for(flow, consultant.email, partner_world["acme"].id)
    again = type(flow)(flow.http, nonce="again")
    request_id = _pending_id(again.authorize(prompt="login"))
    picker = f"/login/organization/{request_id}"
    _is_login_page_of(flow.http.get(picker), request_id)
    login_page = flow.http.get(f"/login?request_id={request_id}")
    chosen = flow.http.post(
        picker,
        data={
            "organization_id": partner_world["acme"].id,
            "csrf_token": csrf_from(login_page.text),
        },
    )
    _is_login_page_of(chosen, request_id)
    # With the password typed, the picker is shown and its choice answered.
    shown = _type_password(again, request_id, consultant.email)
    assert shown.headers["Location"] == picker
    page = flow.http.get(picker)
    chosen = flow.http.post(
        picker,
        data={"organization_id": partner_world["globex"].id, "csrf_token": csrf_from(page.text)},
    )
    assert "code" in query_of(chosen.headers["Location"])


@pytest.fixture
def consent_world(app, hub_clients):
    partner = make_org("partner", "Acme Messaging")
    shop = make_org("client", "Blue Bakery")
    owner = make_user("client", shop, "owner")
    channel = make_channel(shop)
    consent_app = make_consent_client(partner)
    db.session.commit()
    return {"owner": owner, "channel": channel.id, "client_id": consent_app.client_id}


def test_the_consent_screen_decides_nothing_for_a_request_that_asked_for_the_password(
    app, consent_world, browser
):
    consent = Flow(
        browser,
        client_id=consent_world["client_id"],
        redirect_uri=CONSENT_REDIRECT,
        scope="api_keys:manage channels:read",
        nonce=None,
    )
    screen = consent.login(consent_world["owner"].email)
    screen = browser.get(screen.headers["Location"])  # the first request: logged in, consent
    assert screen.status_code == 200, screen.get_data(as_text=True)
    request_id = _pending_id(consent.authorize(prompt="login"))
    approval = {
        "decision": "approve",
        "channels": [consent_world["channel"]],
        "csrf_token": csrf_from(screen.text),
    }
    decided = browser.post(f"/consent/{request_id}", data=approval)
    _is_login_page_of(decided, request_id)
    assert db.session.scalars(db.select(ConsentGrant)).all() == []
    # With the password typed, the screen comes back and the approval gets a code.
    shown = _type_password(consent, request_id, consent_world["owner"].email)
    assert shown.status_code == 200
    approval["csrf_token"] = csrf_from(shown.text)  # a login renews the session
    decided = browser.post(f"/consent/{request_id}", data=approval)
    assert decided.headers["Location"].startswith(CONSENT_REDIRECT + "?code=")


# max_age


@pytest.mark.parametrize(
    "max_age",
    ["\u00b2", "\u0661\u0662", "-1", "+60", "1.5", "60s", "9" * 5000, str(2**31), "0" * 11 + "1"],
)
def test_a_max_age_that_is_not_a_plain_number_of_seconds_is_an_invalid_request(
    signed_in, flow, max_age
):
    params = error_at(type(flow)(flow.http, nonce="bad").authorize(max_age=max_age))
    assert params["error"] == "invalid_request"
    assert params["state"] == flow.state


def test_a_bad_max_age_is_an_invalid_request_without_a_session_too(hub_clients, flow):
    params = error_at(flow.authorize(max_age="\u00b2"))
    assert params["error"] == "invalid_request"


def test_the_largest_max_age_and_an_empty_one_are_taken(signed_in, flow):
    for index, max_age in enumerate([str(2**31 - 1), ""]):
        answer = type(flow)(flow.http, nonce=f"ok-{index}").authorize(max_age=max_age)
        assert "code" in query_of(answer.headers["Location"]), max_age


# prompt=none without OpenID Connect


def test_prompt_none_without_openid_and_without_a_session_answers_login_required(hub_clients, flow):
    params = error_at(flow.authorize(prompt="none", scope="email"))
    assert params["error"] == "login_required"
    assert params["state"] == flow.state


def test_prompt_none_to_a_partners_consent_app_without_a_session_answers_login_required(
    app, hub_clients, browser
):
    client, _ = make_partner_client(
        make_org("partner", "Acme"), redirect_uris=[CONSENT_REDIRECT], scope="channels:read"
    )
    consent = Flow(
        browser,
        client_id=client.client_id,
        redirect_uri=CONSENT_REDIRECT,
        scope="channels:read",
        nonce=None,
    )
    params = error_at(consent.authorize(prompt="none"), CONSENT_REDIRECT)
    assert params["error"] == "login_required"


# Request objects (OpenID Connect Core 6)


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("request", "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.", "request_not_supported"),
        ("request_uri", "https://rp.example/request.jwt", "request_uri_not_supported"),
    ],
)
def test_a_request_object_is_refused_at_the_redirect_uri(signed_in, flow, name, value, error):
    params = error_at(type(flow)(flow.http, nonce="ro").authorize(**{name: value}))
    assert params["error"] == error
    assert params["state"] == flow.state


def test_a_request_object_with_an_unregistered_redirect_uri_gets_the_error_page(hub_clients, flow):
    response = flow.authorize(
        request_uri="https://rp.example/r", redirect_uri="https://evil.example/"
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


# Repeated parameters (RFC 6749 section 3.1)


def _authorize_with_repeated(flow: Flow, name: str, second: str, first: str | None = None):
    """The authorization request of ``flow`` with ``name`` sent as ``first``, then ``second``."""
    params = flow.params(**({name: first} if first is not None else {}))
    query = urlencode(params) + "&" + urlencode({name: second})
    return flow.http.get(f"/oauth/authorize?{query}")


@pytest.mark.parametrize(
    ("name", "first", "second"),
    [
        ("nonce", None, "other-nonce"),
        ("prompt", "none", "login"),
        ("max_age", "3600", "99999"),
        ("organization", "pa_first", "pa_second"),
        ("scope", None, "openid"),
        ("code_challenge", None, "A" * 43),
        ("code_challenge_method", None, "S256"),
        ("response_type", None, "code"),
        ("login_hint", "one@example.com", "another@example.com"),
        ("unknown_extension", "x", "y"),
    ],
)
def test_a_repeated_parameter_is_an_invalid_request_at_the_redirect_uri(
    signed_in, flow, name, first, second
):
    again = type(flow)(flow.http, nonce="repeated")
    params = error_at(_authorize_with_repeated(again, name, second, first))
    assert params["error"] == "invalid_request"
    assert params["state"] == flow.state


def test_a_repeated_state_is_refused_and_echoed_in_neither_value(hub_clients, flow):
    params = error_at(_authorize_with_repeated(flow, "state", "another-state"))
    assert params["error"] == "invalid_request"
    assert "state" not in params


def test_a_repeated_parameter_is_refused_without_a_session_too(hub_clients, flow):
    params = error_at(_authorize_with_repeated(flow, "nonce", "again"))
    assert params["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("name", "second"),
    [("client_id", "partner-hub"), ("redirect_uri", HUB_REDIRECT), ("client_id", "client-hub")],
)
def test_a_repeated_client_id_or_redirect_uri_gets_the_error_page(hub_clients, flow, name, second):
    response = _authorize_with_repeated(flow, name, second)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "invalid_request" in response.text


def test_a_parameter_in_both_the_query_and_the_body_of_a_post_is_repeated(hub_clients, flow):
    params = flow.params()
    response = flow.http.post(
        "/oauth/authorize?" + urlencode({"nonce": "in-the-query"}), data=params
    )
    assert error_at(response)["error"] == "invalid_request"

"""How the authorization response reaches the client: ``response_mode`` query or form_post.

OAuth 2.0 Multiple Response Type Encoding Practices 2.1 and OAuth 2.0 Form
Post Response Mode; a mode this server does not speak is refused in the code
flow's default encoding, the query (RFC 6749 section 4.1.2.1).
"""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.oauth.clients import register_hub_client
from idp.oauth.models import OAuthClient
from idp.timeutil import utcnow
from tests.oauth.conftest import HUB_REDIRECT, error_at, posted_form, query_of, tokens_for

ISSUER = "http://localhost"


@pytest.fixture
def signed_in(partner_world, flow):
    """The partner owner signed in, in the browser of ``flow``."""
    tokens_for(flow, partner_world["owner"].email)
    return partner_world["owner"]


def _again(flow, nonce: str):
    """Another request of the same client in the same browser."""
    return type(flow)(flow.http, nonce=nonce)


def test_a_code_asked_for_with_form_post_is_posted_to_the_redirect_uri_not_put_in_a_url(
    signed_in, flow
):
    again = _again(flow, "form-post")
    response = again.authorize(response_mode="form_post")
    assert "Location" not in response.headers
    action, fields = posted_form(response)
    assert action == HUB_REDIRECT
    assert set(fields) == {"code", "state", "iss"}
    assert fields["state"] == flow.state
    assert fields["iss"] == ISSUER
    # OAuth 2.0 Form Post Response Mode section 2: the page that carries the code is not kept.
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["Pragma"] == "no-cache"
    # Without script the person can still send it on.
    assert '<button type="submit"' in response.get_data(as_text=True)
    assert again.exchange(fields["code"]).status_code == 200


def test_form_post_is_kept_through_the_login_page(partner_world, flow):
    response = flow.login(
        partner_world["owner"].email, login_response=flow.authorize(response_mode="form_post")
    )
    while response.status_code == 302:
        response = flow.http.get(response.headers["Location"])
    action, fields = posted_form(response)
    assert action == HUB_REDIRECT
    assert fields["state"] == flow.state
    assert flow.exchange(fields["code"]).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"scope": "openid unknown:scope"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"request_uri": "https://rp.example/request.jwt"}, "request_uri_not_supported"),
    ],
)
def test_errors_in_form_post_mode_are_posted_too(hub_clients, flow, overrides, error):
    response = flow.authorize(response_mode="form_post", **overrides)
    action, fields = posted_form(response)
    assert action == HUB_REDIRECT
    assert set(fields) == {"error", "error_description", "state", "iss"}
    assert fields["error"] == error
    assert fields["state"] == flow.state
    assert fields["iss"] == ISSUER


def test_a_handlers_error_in_form_post_mode_is_posted(partner_world, flow):
    tokens_for(flow, partner_world["consultant"].email, partner_world["acme"].id)
    silent = _again(flow, "silent").authorize(response_mode="form_post", prompt="none")
    _, fields = posted_form(silent)
    assert fields["error"] == "account_selection_required"
    assert fields["state"] == flow.state


@pytest.mark.parametrize(
    "mode", ["fragment", "query.jwt", "form_post.jwt", "jwt", "FORM_POST", "web_message"]
)
def test_an_unsupported_response_mode_is_refused_in_the_query_and_issues_no_code(
    signed_in, flow, mode
):
    params = error_at(_again(flow, f"mode-{mode}").authorize(response_mode=mode))
    assert params["error"] == "invalid_request"
    assert "response_mode" in params["error_description"]
    assert params["state"] == flow.state


def test_an_unsupported_response_mode_is_refused_before_the_login_page(hub_clients, flow):
    assert error_at(flow.authorize(response_mode="fragment"))["error"] == "invalid_request"


def test_a_repeated_response_mode_is_refused_in_the_query(hub_clients, flow):
    query = flow.params()
    query_string = "&".join(f"{k}={v}" for k, v in query.items())
    response = flow.http.get(
        f"/oauth/authorize?{query_string}&response_mode=form_post&response_mode=form_post"
    )
    assert error_at(response)["error"] == "invalid_request"


@pytest.mark.parametrize("mode", ["query", ""])
def test_query_and_an_empty_response_mode_answer_in_the_query(signed_in, flow, mode):
    response = _again(flow, f"q{mode}").authorize(response_mode=mode)
    assert "code" in query_of(response.headers["Location"])


def test_form_post_never_posts_to_an_unregistered_redirect_uri(hub_clients, flow):
    response = flow.authorize(response_mode="form_post", redirect_uri="https://evil.example/cb")
    assert response.status_code == 400
    assert "<form" not in response.get_data(as_text=True)


def _deleted(client_id: str) -> None:
    db.session.get(OAuthClient, client_id).deleted_at = utcnow()
    db.session.commit()


def _redirect_uri_replaced(client_id: str) -> None:
    register_hub_client("partner", ["https://partner.example.com/cb"], [HUB_REDIRECT])
    db.session.commit()


@pytest.mark.parametrize("mode", ["form_post", "query"])
@pytest.mark.parametrize("change", [_deleted, _redirect_uri_replaced])
def test_a_refusal_never_goes_to_a_redirect_uri_the_client_gave_up_meanwhile(
    partner_world, flow, mode, change
):
    """The client was deleted, or its URIs replaced, while the person was at the login page."""
    started = flow.authorize(response_mode=mode, organization=partner_world["globex"].id)
    change(flow.client_id)
    response = flow.login(partner_world["owner"].email, login_response=started)
    while response.status_code == 302 and response.headers["Location"].startswith("/"):
        response = flow.http.get(response.headers["Location"])
    page = response.get_data(as_text=True)
    assert response.status_code == 400, page
    assert "Location" not in response.headers
    assert "<form" not in page and HUB_REDIRECT not in page


def test_discovery_lists_the_response_modes_answered(browser):
    meta = browser.get("/.well-known/openid-configuration").get_json()
    assert meta["response_modes_supported"] == ["query", "form_post"]

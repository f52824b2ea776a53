"""Authorization endpoint errors (RFC 6749 4.1.2.1, RFC 7636, OIDC) and redirect tampering."""

from __future__ import annotations

import pytest

from tests.oauth.conftest import HUB_REDIRECT, query_of


def _error_redirect(response) -> dict:
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(HUB_REDIRECT + "?")
    return query_of(location)


def test_an_unknown_client_gets_an_error_page_not_a_redirect(hub_clients, flow):
    response = flow.authorize(client_id="no-such-client")
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "invalid_client" in response.text


@pytest.mark.parametrize(
    "tampered",
    [
        HUB_REDIRECT + "/extra",
        HUB_REDIRECT + "?next=https://evil.example",
        HUB_REDIRECT.replace("127.0.0.1", "127.0.0.1.evil.example"),
        HUB_REDIRECT.replace("http://", "https://"),
        HUB_REDIRECT.upper(),
        HUB_REDIRECT + "#frag",
        "https://evil.example/callback",
        HUB_REDIRECT.replace("callback", "callbäck"),
    ],
)
def test_a_redirect_uri_that_is_not_exactly_registered_is_never_redirected_to(
    hub_clients, flow, tampered
):
    response = flow.authorize(redirect_uri=tampered)
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize("value", ["cöde", 'co"de', "co\\de", "co\x00de"])
def test_a_response_type_that_an_error_cannot_quote_is_refused(hub_clients, flow, value):
    response = flow.authorize(response_type=value)
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize("character", ['"', "\\", "\x00"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_redirect_uri_with_a_quote_backslash_or_nul_gets_the_error_page(
    hub_clients, flow, character, method
):
    # Authlib's error descriptions quote the URI and allow neither '"' nor '\\' (a 500 before).
    params = flow.params(redirect_uri=HUB_REDIRECT + character)
    if method == "GET":
        response = flow.http.get("/oauth/authorize", query_string=params)
    else:
        response = flow.http.post("/oauth/authorize", data=params)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "invalid_request" in response.text


def test_a_missing_redirect_uri_is_refused(hub_clients, flow):
    response = flow.authorize(redirect_uri=None)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_pkce_is_required(hub_clients, flow):
    params = _error_redirect(flow.authorize(code_challenge=None, code_challenge_method=None))
    assert params["error"] == "invalid_request"
    assert params["state"] == "state-123"
    assert params["iss"] == "http://localhost"


def test_the_plain_pkce_method_is_refused(hub_clients, flow):
    params = _error_redirect(flow.authorize(code_challenge_method="plain"))
    assert params["error"] == "invalid_request"


def test_a_challenge_without_method_is_refused_rather_than_read_as_plain(hub_clients, flow):
    params = _error_redirect(flow.authorize(code_challenge_method=None))
    assert params["error"] == "invalid_request"


@pytest.mark.parametrize("response_type", ["token", "id_token", "code token", "code id_token"])
def test_implicit_and_hybrid_flows_do_not_exist(hub_clients, flow, response_type):
    params = _error_redirect(flow.authorize(response_type=response_type))
    assert params["error"] == "unsupported_response_type"


def test_an_unknown_scope_is_refused(hub_clients, flow):
    params = _error_redirect(flow.authorize(scope="openid admin:everything"))
    assert params["error"] == "invalid_scope"


def test_prompt_none_without_a_session_answers_login_required(hub_clients, flow):
    params = _error_redirect(flow.authorize(prompt="none"))
    assert params["error"] == "login_required"


def test_repeated_parameters_are_refused(hub_clients, flow):
    query = flow.params()
    response = flow.http.get(
        "/oauth/authorize?" + "&".join(f"{k}={v}" for k, v in query.items()) + "&state=again"
    )
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_without_a_session_the_browser_goes_to_the_hub_login_page(hub_clients, flow):
    response = flow.authorize()
    assert response.status_code == 302
    assert "/login?request_id=" in response.headers["Location"]
    page = flow.http.get(response.headers["Location"])
    assert "Partner Hub" in page.text


def test_a_stale_resume_link_explains_itself(hub_clients, flow):
    response = flow.http.get("/oauth/authorize/resume/unknown")
    assert response.status_code == 400
    assert "expired" in response.text


def test_a_replayed_nonce_is_refused(app, hub_clients, flow):
    from tests.factories import make_org, make_user

    user = make_user("partner", make_org("partner"))
    from idp.extensions import db

    db.session.commit()
    flow.code_for(user.email)
    params = _error_redirect(flow.authorize())
    assert params["error"] == "invalid_request"


def test_an_empty_nonce_or_one_outside_openid_connect_is_never_a_replay(app, partner_world, flow):
    from tests.oauth.conftest import tokens_for

    tokens_for(flow, partner_world["owner"].email)
    for attempt in range(2):
        empty = type(flow)(flow.http, nonce="").authorize()
        assert "code" in query_of(empty.headers["Location"]), attempt
    for attempt in range(2):
        plain_oauth = type(flow)(flow.http, nonce="fixed", scope="email").authorize()
        assert "code" in query_of(plain_oauth.headers["Location"]), attempt


def test_the_nonce_check_reads_one_index_entry_not_every_code_of_the_client(app, hub_clients):
    import sqlalchemy as sa

    from idp.extensions import db
    from idp.oauth.code_store import _NONCE_USED

    with db.engine.connect() as conn:
        postgresql = conn.dialect.name == "postgresql"
        if postgresql:
            conn.execute(sa.text("SET enable_seqscan = off"))  # as on a table too big to scan
        compiled = _NONCE_USED.compile(dialect=conn.dialect)
        bound = compiled.construct_params({"client_id": "partner-hub", "nonce": "n"})
        args = tuple(bound[k] for k in compiled.positiontup) if compiled.positional else bound
        explain = "EXPLAIN" if postgresql else "EXPLAIN QUERY PLAN"
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {compiled}", args))
    assert "uq_oauth_authorization_codes_client_nonce" in plan
    if postgresql:
        assert "Filter" not in plan  # the nonce is in the index condition, not checked row by row
    else:
        assert "(client_id=? AND nonce=?)" in plan


def test_prompt_login_asks_for_the_password_again(app, hub_clients, flow):
    from idp.extensions import db
    from tests.factories import make_org, make_user

    user = make_user("partner", make_org("partner"))
    db.session.commit()
    flow.code_for(user.email)
    again = type(flow)(flow.http, nonce="second").authorize(prompt="login")
    assert "/login?request_id=" in again.headers["Location"]
    page = flow.http.get(again.headers["Location"])
    assert page.status_code == 200
    assert 'name="password"' in page.text


def test_a_logged_in_user_of_another_hub_sees_where_to_go(app, hub_clients, flow):
    from idp.extensions import db
    from tests.factories import make_org, make_user

    baker = make_user("client", make_org("client"))
    db.session.commit()
    type(flow)(flow.http, client_id="client-hub").code_for(baker.email)
    response = type(flow)(flow.http, nonce="other").authorize()
    assert response.status_code == 403
    assert "This account belongs to the Client Hub" in response.text
    assert "Use another account" in response.text


def test_only_the_latest_pending_requests_are_kept_in_the_session(app, hub_clients, flow):
    from idp.oauth.authorize import MAX_PENDING

    first = flow.authorize(state="first").headers["Location"]
    for index in range(MAX_PENDING):
        flow.authorize(state=f"later-{index}")
    stale = flow.http.get(first)
    assert "Sign in to your account" in stale.text  # no longer tied to the Partner Hub request
    resumed = flow.http.get(first.replace("/login?request_id=", "/oauth/authorize/resume/"))
    assert resumed.status_code == 400
    assert "expired" in resumed.text


def test_requests_answered_at_once_leave_the_session_and_other_tabs_alone(app, partner_world, flow):
    from idp.oauth.authorize import MAX_PENDING
    from tests.oauth.conftest import csrf_from, tokens_for

    tokens_for(flow, partner_world["consultant"].email, partner_world["acme"].id)
    # One tab waits on the partner picker ...
    picker = type(flow)(flow.http, nonce="picker")
    location = picker.authorize().headers["Location"]
    assert "/login/organization/" in location
    # ... while more sign-ins than the session keeps pending are answered at once.
    for index in range(MAX_PENDING + 1):
        answered = type(flow)(flow.http, nonce=f"at-once-{index}").authorize(
            organization=partner_world["globex"].id
        )
        assert "code" in query_of(answered.headers["Location"])
        assert "Set-Cookie" not in answered.headers
    page = flow.http.get(location)
    chosen = flow.http.post(
        location,
        data={"organization_id": partner_world["acme"].id, "csrf_token": csrf_from(page.text)},
    )
    tokens = picker.exchange(query_of(chosen.headers["Location"])["code"])
    assert tokens.status_code == 200, tokens.get_data(as_text=True)


def test_a_login_older_than_max_age_asks_for_the_password_again(app, hub_clients, flow):
    import time

    from idp.extensions import db
    from tests.factories import make_org, make_user

    user = make_user("partner", make_org("partner"))
    db.session.commit()
    flow.code_for(user.email)
    with flow.http.client.session_transaction() as session:
        session["auth_time"] = int(time.time()) - 600  # the password was typed ten minutes ago
    from idp.keys.service import verify_jwt

    recent = type(flow)(flow.http, nonce="recent").authorize(max_age="3600")
    assert "code=" in recent.headers["Location"]
    again = type(flow)(flow.http, nonce="again").authorize(max_age="300")
    assert "/login?request_id=" in again.headers["Location"]
    # After typing the password again, the ID token says the login is fresh.
    fresh = type(flow)(flow.http, nonce="fresh")
    response = fresh.login(user.email, login_response=fresh.authorize(max_age="300"))
    while "code=" not in response.headers["Location"]:
        response = flow.http.get(response.headers["Location"])
    tokens = fresh.exchange(query_of(response.headers["Location"])["code"]).get_json()
    claims = verify_jwt(tokens["id_token"], audience="partner-hub")
    assert claims["auth_time"] >= int(time.time()) - 5


def test_prompt_none_with_a_login_older_than_max_age_answers_login_required(app, hub_clients, flow):
    import time

    from idp.extensions import db
    from tests.factories import make_org, make_user

    user = make_user("partner", make_org("partner"))
    db.session.commit()
    flow.code_for(user.email)
    with flow.http.client.session_transaction() as session:
        session["auth_time"] = int(time.time()) - 600
    params = _error_redirect(
        type(flow)(flow.http, nonce="n2").authorize(max_age="60", prompt="none")
    )
    assert params["error"] == "login_required"


def test_prompt_none_for_a_person_with_several_partners_answers_account_selection_required(
    app, partner_world, flow
):
    from tests.oauth.conftest import tokens_for

    tokens_for(flow, partner_world["consultant"].email, partner_world["acme"].id)
    silent = type(flow)(flow.http, nonce="silent").authorize(prompt="none")
    params = _error_redirect(silent)
    assert params["error"] == "account_selection_required"
    assert params["state"] == flow.state
    # Naming the organization needs no page, so prompt=none can go through.
    named = type(flow)(flow.http, nonce="named").authorize(
        prompt="none", organization=partner_world["globex"].id
    )
    assert "code" in query_of(named.headers["Location"])


def test_prompt_none_from_another_hubs_session_answers_login_required(app, partner_world, flow):
    from tests.oauth.conftest import tokens_for

    tokens_for(flow, partner_world["owner"].email)
    silent = type(flow)(flow.http, client_id="client-hub", nonce="other-hub").authorize(
        prompt="none"
    )
    assert _error_redirect(silent)["error"] == "login_required"

"""The partner picker of a hub login: a refused choice, and signing in with another account."""

from __future__ import annotations

import re

from idp.accounts.models import User
from idp.extensions import db
from idp.keys.service import verify_jwt
from idp.orgs.models import Membership
from tests.factories import PASSWORD, make_org, make_user
from tests.oauth.conftest import csrf_from, query_of


def _picker(flow, email: str) -> str:
    """Log in as ``email`` and return the partner picker's URL."""
    location = flow.login(email).headers["Location"]
    while location.startswith("/oauth/authorize/resume/"):
        location = flow.http.get(location).headers["Location"]
    assert location.startswith("/login/organization/"), location
    return location


def _form_with(html: str, button: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the form whose button says ``button``."""
    for form in re.findall(r"<form\b.*?</form>", html, re.S):
        if button in form:
            action = re.search(r'action="([^"]+)"', form).group(1)
            fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))
            return action, fields
    raise AssertionError(f"no form with {button!r} in the page")


def _refused_choice(flow, picker: str, organization_id: str):
    page = flow.http.get(picker)
    return flow.http.post(
        picker, data={"organization_id": organization_id, "csrf_token": csrf_from(page.text)}
    )


def test_choosing_a_partner_one_does_not_belong_to_says_so(app, partner_world, flow):
    consultant = partner_world["consultant"]
    stranger = make_org("partner", "Initech")
    db.session.commit()
    picker = _picker(flow, consultant.email)
    response = _refused_choice(flow, picker, stranger.id)
    assert response.status_code == 400
    assert "You are not a member of that partner" in response.text
    assert 'role="alert"' in response.text
    assert "Initech" not in response.text
    assert "Acme" in response.text and "Globex" in response.text
    db.session.expire_all()
    assert db.session.get(User, consultant.id).last_organization_id is None


def test_a_membership_removed_while_the_picker_was_open_is_explained(app, partner_world, flow):
    consultant, globex = partner_world["consultant"], partner_world["globex"]
    picker = _picker(flow, consultant.email)
    page = flow.http.get(picker)
    db.session.execute(
        db.delete(Membership).where(
            Membership.user_id == consultant.id, Membership.organization_id == globex.id
        )
    )
    db.session.commit()
    response = flow.http.post(
        picker, data={"organization_id": globex.id, "csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 400
    assert "You are not a member of that partner" in response.text
    # The partner the account still belongs to is offered, and answers the request.
    chosen = _refused_choice(flow, picker, partner_world["acme"].id)
    assert "code" in query_of(chosen.headers["Location"])


def test_the_picker_lets_one_sign_in_with_another_account(app, partner_world, flow):
    consultant, owner = partner_world["consultant"], partner_world["owner"]
    picker = _picker(flow, consultant.email)
    request_id = picker.rsplit("/", 1)[1]
    page = flow.http.get(picker)
    assert "Use another account" in page.text
    action, fields = _form_with(page.text, "Use another account")
    response = flow.http.post(action, data=fields)
    # Signed out, and back on the login page of the same authorization request.
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?request_id={request_id}"
    assert flow.http.get(picker).headers["Location"] == f"/login?request_id={request_id}"
    login_page = flow.http.get(response.headers["Location"])
    assert login_page.status_code == 200 and "Sign in to Partner Hub" in login_page.text
    answer = flow.http.post(
        response.headers["Location"],
        data={"email": owner.email, "password": PASSWORD, "csrf_token": csrf_from(login_page.text)},
    )
    while "code=" not in answer.headers["Location"]:
        answer = flow.http.get(answer.headers["Location"])
    params = query_of(answer.headers["Location"])
    assert params["state"] == flow.state
    tokens = flow.exchange(params["code"]).get_json()
    claims = verify_jwt(tokens["access_token"], typ="at+jwt")
    assert (claims["sub"], claims["org"]) == (owner.id, partner_world["acme"].id)


def test_an_account_without_organizations_may_sign_out_and_use_another(app, partner_world, flow):
    owner = partner_world["owner"]
    db.session.execute(db.delete(Membership).where(Membership.user_id == owner.id))
    db.session.commit()
    location = flow.login(owner.email).headers["Location"]
    page = flow.http.get(location)
    assert page.status_code == 403 and "No organization to enter" in page.text
    action, fields = _form_with(page.text, "Use another account")
    done = flow.http.post(action, data=fields)
    assert done.status_code == 200 and "You are signed out." in done.text
    again = type(flow)(flow.http, nonce="again").authorize()
    assert again.headers["Location"].startswith("/login?")


def test_an_account_of_another_hub_may_answer_the_same_request_with_another_account(
    app, partner_world, flow
):
    client_org = make_org("client", "Bakery")
    baker = make_user("client", client_org, "owner")
    db.session.commit()
    page = flow.login(baker.email)
    assert page.status_code == 403 and "Sign in through the Client Hub instead" in page.text
    action, fields = _form_with(page.text, "Use another account")
    response = flow.http.post(action, data=fields)
    # Back on the login page of the Partner Hub's request, which a partner account answers.
    assert response.status_code == 302 and response.headers["Location"].startswith(
        "/login?request_id="
    )
    login_page = flow.http.get(response.headers["Location"])
    answer = flow.http.post(
        response.headers["Location"],
        data={
            "email": partner_world["owner"].email,
            "password": PASSWORD,
            "csrf_token": csrf_from(login_page.text),
        },
    )
    while "code=" not in answer.headers["Location"]:
        answer = flow.http.get(answer.headers["Location"])
    params = query_of(answer.headers["Location"])
    assert params["state"] == flow.state
    claims = verify_jwt(flow.exchange(params["code"]).get_json()["access_token"], typ="at+jwt")
    assert claims["sub"] == partner_world["owner"].id

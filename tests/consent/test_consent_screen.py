"""The consent screen through the authorization endpoint: approve, deny, change, refuse."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from idp.accounts.models import User
from idp.consent import service
from idp.consent.models import ConsentGrant
from idp.extensions import db
from idp.orgs.models import Organization
from tests.consent.factories import (
    CONSENT_REDIRECT,
    CONSENT_SECRET,
    client_actor,
    make_consent_client,
    make_grant,
)
from tests.consent.interleave import Competitor, pause_before
from tests.factories import PASSWORD, make_channel, make_org, make_user, sign_in
from tests.oauth.conftest import csrf_from, pkce_pair, query_of


@pytest.fixture
def world(app):
    """Plain ids only: requests must not share the test's application context (and its ``g``)."""
    with app.app_context():
        partner = make_org("partner", "Acme Messaging")
        shop = make_org("client", "Blue Bakery")
        owner = make_user("client", shop, "owner", email="owner@bakery.example")
        make_user("partner", partner, "owner", email="owner@acme.example")
        make_user("support", make_org("support"), "agent", email="agent@support.example")
        channels = [make_channel(shop, s).id for s in ("live", "running", "pending")]
        consent_app = make_consent_client(partner)
        db.session.commit()
        world = SimpleNamespace(
            partner=partner.id,
            shop=shop.id,
            owner=owner.id,
            channels=channels,
            app=SimpleNamespace(client_id=consent_app.client_id),
        )
        db.session.remove()
    return world


def grants(app) -> list[ConsentGrant]:
    """Every grant in the database."""
    with app.app_context():
        rows = db.session.scalars(db.select(ConsentGrant)).all()
        for row in rows:
            db.session.expunge(row)
        return rows


class ConsentFlow:
    """A partner's authorization request driven through the test client."""

    def __init__(self, http, app, scope="api_keys:manage channels:read"):
        self.http, self.app, self.scope = http, app, scope
        self.verifier, self.challenge = pkce_pair()

    def start(self, email: str):
        """Authorize, log in as ``email``, and return the consent screen response."""
        params = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": CONSENT_REDIRECT,
            "scope": self.scope,
            "state": "partner-state",
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        if self.scope is None:
            del params["scope"]
        resp = self.http.get("/oauth/authorize", query_string=params)
        if resp.status_code == 302 and "/login" in resp.headers["Location"]:
            login_url = resp.headers["Location"]
            page = self.http.get(login_url)
            resp = self.http.post(
                login_url,
                data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
            )
        while resp.status_code == 302 and urlsplit(resp.headers["Location"]).path.startswith(
            "/oauth/authorize"
        ):
            resp = self.http.get(resp.headers["Location"])
        return resp

    def submit(self, screen, decision: str, channels=(), csrf=True):
        """Post the consent form of ``screen``."""
        action = _form_action(screen.text)
        data = {"decision": decision, "channels": list(channels)}
        if csrf:
            data["csrf_token"] = csrf_from(screen.text)
        return self.http.post(action, data=data)

    def exchange(self, code: str):
        """The partner's server exchanges the code, authenticated, with the PKCE verifier."""
        basic = base64.b64encode(f"{self.app.client_id}:{CONSENT_SECRET}".encode()).decode()
        return self.http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CONSENT_REDIRECT,
                "code_verifier": self.verifier,
            },
            headers={"Authorization": f"Basic {basic}"},
        )


def _form_action(html: str) -> str:
    import re

    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, "the page has no form"
    return match.group(1).replace("&amp;", "&")


def test_approving_two_of_three_numbers_returns_a_code_whose_exchange_names_the_grant(
    app, client, world
):
    flow = ConsentFlow(client, world.app)
    screen = flow.start("owner@bakery.example")
    assert screen.status_code == 200, screen.text
    html = screen.text
    assert "Acme Messaging" in html and "Blue Bakery" in html
    assert "generate and manage API keys" in html and "see channel status" in html
    assert html.count('type="checkbox"') == 3 and "checked" not in html
    assert "frame-ancestors 'none'" in screen.headers["Content-Security-Policy"]
    ch1, ch2, _ = world.channels
    answer = flow.submit(screen, "approve", [ch1, ch2])
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(CONSENT_REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == "partner-state" and query["iss"] and query["code"]
    token = flow.exchange(query["code"])
    assert token.status_code == 200, token.get_json()
    grant = token.get_json()["grant"]
    assert grant["client"] == world.shop
    assert sorted(grant["channels"]) == sorted([ch1, ch2])
    assert grant["scope"] == "api_keys:manage channels:read"
    (stored,) = grants(app)
    assert stored.id == grant["id"] and stored.granted_by_id == world.owner
    # the code is single-use: a replay learns nothing, and revokes the token it issued
    assert flow.exchange(query["code"]).status_code == 400
    basic = base64.b64encode(f"{flow.app.client_id}:{CONSENT_SECRET}".encode()).decode()
    introspected = client.post(
        "/oauth/introspect",
        data={"token": token.get_json()["access_token"]},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert introspected.status_code == 200 and introspected.get_json() == {"active": False}


def test_denying_returns_access_denied_with_the_state(app, client, world):
    flow = ConsentFlow(client, world.app)
    answer = flow.submit(flow.start("owner@bakery.example"), "deny")
    query = query_of(answer.headers["Location"])
    assert answer.headers["Location"].startswith(CONSENT_REDIRECT)
    assert query["error"] == "access_denied" and query["state"] == "partner-state"
    assert "code" not in query
    assert grants(app) == []


def test_a_later_visit_shows_what_is_granted_and_unticking_removes_it(app, client, world):
    ch1, ch2, _ = world.channels
    with app.app_context():
        from idp.channels.models import Channel

        make_grant(
            db.session.get(Organization, world.shop),
            db.session.get(Organization, world.partner),
            [db.session.get(Channel, ch1), db.session.get(Channel, ch2)],
        )
        db.session.remove()
    flow = ConsentFlow(client, world.app)
    screen = flow.start("owner@bakery.example")
    assert screen.text.count("checked") == 2
    answer = flow.submit(screen, "approve", [ch2])
    token = flow.exchange(query_of(answer.headers["Location"])["code"]).get_json()
    assert token["grant"]["channels"] == [ch2]
    assert len(grants(app)) == 1


@pytest.mark.parametrize("email", ["owner@acme.example", "agent@support.example"])
def test_partner_and_support_accounts_are_told_they_cannot_approve(app, client, world, email):
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        sign_in(client, user.id, user.security_stamp)
        db.session.remove()
    flow = ConsentFlow(client, world.app)
    screen = flow.start(email)
    assert screen.status_code == 403
    assert "cannot approve" in screen.text and "Client Hub" in screen.text
    assert 'type="checkbox"' not in screen.text
    answer = flow.submit(screen, "approve", [world.channels[0]])
    assert query_of(answer.headers["Location"])["error"] == "access_denied"
    assert grants(app) == []


def test_the_form_needs_its_csrf_token(app, client, world):
    flow = ConsentFlow(client, world.app)
    screen = flow.start("owner@bakery.example")
    answer = flow.submit(screen, "approve", [world.channels[0]], csrf=False)
    assert answer.status_code == 400
    assert grants(app) == []


def test_numbers_of_another_client_cannot_be_slipped_in(app, client, world):
    with app.app_context():
        other = make_channel(make_org("client")).id
        db.session.commit()
        db.session.remove()
    flow = ConsentFlow(client, world.app)
    answer = flow.submit(flow.start("owner@bakery.example"), "approve", [other])
    assert answer.status_code == 422
    assert grants(app) == []


def test_a_request_asking_nothing_grantable_is_refused(app, client, world):
    flow = ConsentFlow(client, world.app, scope="channels:write")
    screen = flow.start("owner@bakery.example")
    assert screen.status_code == 403
    assert "nothing a Client Hub account can grant" in screen.text
    answer = flow.submit(screen, "approve", [world.channels[0]])
    assert query_of(answer.headers["Location"])["error"] == "access_denied"
    assert grants(app) == []


def test_a_request_without_scope_asks_for_what_a_consent_link_asks_by_default(app, client, world):
    from policies.consent import DEFAULT_CONSENT_SCOPE

    flow = ConsentFlow(client, world.app, scope=None)
    screen = flow.start("owner@bakery.example")
    assert screen.status_code == 200
    assert "generate and manage API keys" in screen.text
    answer = flow.submit(screen, "approve", [world.channels[0]])
    assert "code" in query_of(answer.headers["Location"])
    (grant,) = grants(app)
    assert set(grant.scope.split()) == set(DEFAULT_CONSENT_SCOPE.split())


def test_no_grant_is_left_behind_when_the_authorization_response_fails(app, client, world):
    from idp.oauth.models import OAuthClient

    flow = ConsentFlow(client, world.app)
    screen = flow.start("owner@bakery.example")
    with app.app_context():
        # The partner changes its registration between the screen and the decision.
        row = db.session.get(OAuthClient, world.app.client_id)
        row.redirect_uris = ["https://partner.example/elsewhere"]
        db.session.commit()
        db.session.remove()
    answer = flow.submit(screen, "approve", [world.channels[0]])
    assert answer.status_code in (302, 400)
    assert "code=" not in answer.headers.get("Location", "")
    assert grants(app) == []


def test_approving_without_api_keys_ends_the_partners_keys_at_the_gateway(app, client, world):
    ch1, ch2, _ = world.channels
    with app.app_context():
        from idp.channels.models import Channel
        from tests.consent.factories import make_key

        partner = db.session.get(Organization, world.partner)
        make_grant(
            db.session.get(Organization, world.shop),
            partner,
            [db.session.get(Channel, ch1), db.session.get(Channel, ch2)],
        )
        key = make_key(db.session.get(Channel, ch1), partner=partner)
        db.session.remove()
    assert client.get("/v1/api-keys/check", headers={"D360-API-KEY": key}).status_code == 200
    # The partner now asks only to see channel status; the client approves that.
    flow = ConsentFlow(client, world.app, scope="channels:read")
    screen = flow.start("owner@bakery.example")
    assert "generate and manage API keys" not in screen.text
    answer = flow.submit(screen, "approve", [ch1, ch2])
    token = flow.exchange(query_of(answer.headers["Location"])["code"]).get_json()
    assert token["grant"]["scope"] == "channels:read"
    assert client.get("/v1/api-keys/check", headers={"D360-API-KEY": key}).status_code == 401


def test_prompt_none_answers_consent_required_instead_of_showing_the_screen(app, client, world):
    flow = ConsentFlow(client, world.app)
    assert flow.start("owner@bakery.example").status_code == 200  # logged in, screen shown
    silent = client.get(
        "/oauth/authorize",
        query_string={
            "response_type": "code",
            "client_id": world.app.client_id,
            "redirect_uri": CONSENT_REDIRECT,
            "scope": flow.scope,
            "state": "silent-state",
            "code_challenge": flow.challenge,
            "code_challenge_method": "S256",
            "prompt": "none",
        },
    )
    assert silent.status_code == 302
    answer = query_of(silent.headers["Location"])
    assert answer["error"] == "consent_required"
    assert answer["state"] == "silent-state"
    assert silent.headers["Location"].startswith(CONSENT_REDIRECT)


@pytest.mark.parametrize("granted_before", [False, True], ids=["first approval", "adding a number"])
def test_a_double_submitted_allow_never_fails(app, client, world, monkeypatch, granted_before):
    """The other click commits between this one's read of the grant and its write."""
    ch1, ch2, _ = world.channels
    with app.app_context():
        if granted_before:
            from idp.channels.models import Channel

            make_grant(
                db.session.get(Organization, world.shop),
                db.session.get(Organization, world.partner),
                [db.session.get(Channel, ch1)],
            )
        db.session.remove()
    actor = client_actor(SimpleNamespace(id=world.shop), SimpleNamespace(id=world.owner))
    other_click = Competitor(
        app,
        lambda: service.approve_consent(
            actor,
            partner_id=world.partner,
            oauth_client_id=world.app.client_id,
            scope="api_keys:manage channels:read",
            channel_ids=[ch1, ch2],
        ),
    )
    flow = ConsentFlow(client, world.app)
    screen = flow.start("owner@bakery.example")
    pause_before(monkeypatch, service, "GrantChannel", other_click)
    answer = flow.submit(screen, "approve", [ch1, ch2])
    other_click.finish()
    with app.app_context():
        waits_its_turn = granted_before and db.engine.dialect.name == "postgresql"
    if waits_its_turn:
        # The grant's row lock: this click waits for the other, then finds nothing to add.
        assert answer.status_code == 302 and query_of(answer.headers["Location"])["code"]
    else:
        # Both wrote at once and the database refused the second: the person is asked again.
        assert answer.status_code == 409, answer.text
        assert "changed at the same moment" in answer.text and "allow again" in answer.text
        assert answer.text.count("checked") == 2
        answer = flow.submit(answer, "approve", [ch1, ch2])
        assert answer.status_code == 302 and query_of(answer.headers["Location"])["code"]
    with app.app_context():
        (grant,) = db.session.scalars(db.select(ConsentGrant)).all()
        assert sorted(grant.channel_ids) == sorted([ch1, ch2])
        db.session.remove()

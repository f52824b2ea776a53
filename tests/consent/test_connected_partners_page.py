"""The Client Hub "Connected partners" page and the consent-link landing page, per person."""

from __future__ import annotations

import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.apikeys import service as keys
from idp.consent.models import ConsentGrant
from idp.extensions import db
from tests.consent.factories import make_grant, make_key
from tests.factories import make_channel, make_org, make_user, sign_in
from tests.oauth.conftest import csrf_from

PAGE = "/client/connected-partners"


@pytest.fixture
def world(app):
    """Client A grants Acme two numbers; client B grants Globex one. Plain ids only."""
    with app.app_context():
        a, b = make_org("client", "Client A"), make_org("client", "Client B")
        acme, globex = make_org("partner", "Acme"), make_org("partner", "Globex")
        a1, a2, b1 = make_channel(a), make_channel(a), make_channel(b)
        grant_a = make_grant(a, acme, [a1, a2])
        grant_b = make_grant(b, globex, [b1])
        key_a1 = make_key(a1, partner=acme)
        users = {
            "a_member": make_user("client", a, "member"),
            "b_owner": make_user("client", b, "owner"),
            "acme_owner": make_user("partner", acme, "owner"),
            "agent": make_user("support", make_org("support", "Support"), "agent"),
        }
        db.session.commit()
        world = SimpleNamespace(
            a=a.id,
            a1=a1.id,
            a2=a2.id,
            grant_a=grant_a.id,
            grant_b=grant_b.id,
            key_a1=key_a1,
            users={name: (u.id, u.security_stamp) for name, u in users.items()},
            app=app,
        )
        db.session.remove()
    return world


def log_in(client, world, name: str) -> None:
    """What a login leaves in the session (``idp.login.session.login_user``)."""
    with world.app.app_context():
        sign_in(client, *world.users[name])


def grant_channels(app, grant_id: str) -> tuple[list[str], bool]:
    with app.app_context():
        grant = db.session.get(ConsentGrant, grant_id)
        result = (grant.channel_ids, grant.is_active)
        db.session.remove()
    return result


def gateway_accepts(app, key: str) -> bool:
    with app.app_context():
        try:
            keys.check_key(key)
        except keys.InvalidApiKey:
            return False
        finally:
            db.session.remove()
    return True


def test_people_who_are_not_logged_in_are_sent_to_the_client_hub_login(client, world):
    resp = client.get(PAGE)
    assert resp.status_code == 302
    target = urlsplit(resp.headers["Location"])
    assert target.path == "/login"
    assert parse_qs(target.query) == {"hub": ["client"], "next": [PAGE]}


def test_a_client_sees_only_its_own_grants(client, world):
    log_in(client, world, "a_member")
    html = client.get(PAGE).get_data(as_text=True)
    assert "Acme" in html and "Globex" not in html
    assert html.count("Remove this number") == 2
    assert "generate and manage API keys" in html


def test_removing_one_number_revokes_the_partners_key_on_it(app, client, world):
    log_in(client, world, "a_member")
    page = client.get(PAGE).get_data(as_text=True)
    action = f"{PAGE}/{world.grant_a}/channels/{world.a1}/revoke"
    assert action in page
    resp = client.post(action, data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(PAGE)
    assert "can no longer act on that number" in client.get(PAGE).get_data(as_text=True)
    assert grant_channels(app, world.grant_a) == ([world.a2], True)
    assert not gateway_accepts(app, world.key_a1)


def test_revoking_the_whole_grant_from_the_page(app, client, world):
    log_in(client, world, "a_member")
    page = client.get(PAGE).get_data(as_text=True)
    resp = client.post(f"{PAGE}/{world.grant_a}/revoke", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 302
    assert grant_channels(app, world.grant_a)[1] is False
    assert not gateway_accepts(app, world.key_a1)


def test_the_forms_need_their_csrf_token(app, client, world):
    log_in(client, world, "a_member")
    client.get(PAGE)
    assert client.post(f"{PAGE}/{world.grant_a}/revoke").status_code == 400
    assert grant_channels(app, world.grant_a)[1] is True


def test_a_client_cannot_revoke_another_clients_grant(app, client, world):
    log_in(client, world, "b_owner")
    page = client.get(PAGE).get_data(as_text=True)
    resp = client.post(f"{PAGE}/{world.grant_a}/revoke", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 404
    assert grant_channels(app, world.grant_a)[1] is True


@pytest.mark.parametrize(
    ("name", "instead"),
    [("acme_owner", "in the Partner Hub"), ("agent", 'href="/support/"')],
)
def test_a_partner_or_support_account_is_told_the_page_is_for_client_hub_accounts(
    client, world, name, instead
):
    log_in(client, world, name)
    resp = client.get(PAGE)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403
    assert "Connected partners is for Client Hub accounts" in html
    assert instead in html
    assert 'href="/login/done"' in html  # back to the account
    assert "Acme" not in html and "Globex" not in html


def test_the_page_and_the_account_page_lead_to_each_other(client, world):
    log_in(client, world, "a_member")
    assert 'href="/login/done"' in client.get(PAGE).get_data(as_text=True)
    assert f'href="{PAGE}"' in client.get("/login/done").get_data(as_text=True)


def test_the_account_page_of_a_partner_has_no_connected_partners_link(client, world):
    log_in(client, world, "acme_owner")
    assert PAGE not in client.get("/login/done").get_data(as_text=True)


def test_a_logged_in_client_opening_a_link_goes_straight_to_the_consent_screen(app, client, world):
    from tests.consent.factories import CONSENT_REDIRECT, make_consent_client

    with app.app_context():
        from idp.consent.links import create_consent_link
        from idp.orgs.models import Organization
        from tests.consent.factories import partner_actor

        acme = db.session.scalar(db.select(Organization).where(Organization.name == "Acme"))
        consent_app = make_consent_client(acme)
        link = create_consent_link(
            partner_actor(acme),
            acme.id,
            {
                "client_id": consent_app.client_id,
                "redirect_uri": CONSENT_REDIRECT,
                "state": "s",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
                "expires_in": 600,
            },
        ).id
        db.session.remove()
    landing = client.get(f"/c/{link}").get_data(as_text=True)
    assert re.search(r'href="/login\?hub=client&amp;next=/oauth/authorize', landing)
    log_in(client, world, "a_member")
    resp = client.get(f"/c/{link}")
    assert resp.status_code == 302
    assert urlsplit(resp.headers["Location"]).path == "/oauth/authorize"

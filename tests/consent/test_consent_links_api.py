"""Consent links: a partner's own client, an exactly registered redirect URI, a short opaque URL."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.consent import links
from idp.consent.models import ConsentLink
from idp.extensions import db
from idp.timeutil import utcnow
from tests.consent.factories import (
    CONSENT_REDIRECT,
    bearers_of,
    make_consent_client,
    people_of,
    two_of_each,
)
from tests.factories import bearer_for

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.fixture
def world(app_ctx):
    w = two_of_each()
    w["p_app"] = make_consent_client(w["p"])
    w["q_app"] = make_consent_client(w["q"])
    w["auth"] = bearers_of(people_of(w))
    w["auth"]["p_machine"] = bearer_for(
        None, w["p"], client_id=w["p_app"].client_id, scope="consent_links:create"
    )
    return w


def body(w, **overrides):
    data = {
        "client_id": w["p_app"].client_id,
        "redirect_uri": CONSENT_REDIRECT,
        "state": "st-123",
        "code_challenge": CHALLENGE,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(
    ("actor", "partner", "status"),
    [
        ("p_owner", "p", 201),
        ("p_member", "p", 201),
        ("p_machine", "p", 201),
        ("q_owner", "p", 404),
        ("p_owner", "q", 404),
        ("a_owner", "p", 404),
        ("support", "p", 404),
    ],
)
def test_who_may_create_a_consent_link(client, world, actor, partner, status):
    url = f"/v1/partners/{world[partner].id}/consent-links"
    resp = client.post(url, json=body(world), headers=world["auth"][actor])
    assert resp.status_code == status, resp.get_json()


def test_a_link_is_short_opaque_and_resolves_to_the_authorization_request(client, world):
    resp = client.post(
        f"/v1/partners/{world['p'].id}/consent-links",
        json=body(world, scope="api_keys:manage", email="owner@shop.example", expires_in=3600),
        headers=world["auth"]["p_owner"],
    )
    link = resp.get_json()
    assert set(link) == {"url", "expires_at"}
    path = urlsplit(link["url"]).path
    assert path.startswith("/c/lnk_") and not urlsplit(link["url"]).query
    assert "st-123" not in link["url"] and CONSENT_REDIRECT not in link["url"]
    target, _ = links.resolve_link(path.rsplit("/", 1)[1])
    target = urlsplit(target)
    query = parse_qs(target.query)
    assert target.path == "/oauth/authorize"
    assert query == {
        "response_type": ["code"],
        "client_id": [world["p_app"].client_id],
        "redirect_uri": [CONSENT_REDIRECT],
        "scope": ["api_keys:manage"],
        "state": ["st-123"],
        "login_hint": ["owner@shop.example"],
        "code_challenge": [CHALLENGE],
        "code_challenge_method": ["S256"],
    }
    row = db.session.get(ConsentLink, path.rsplit("/", 1)[1])
    assert timedelta(minutes=59) < row.expires_at - utcnow() <= timedelta(hours=1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"redirect_uri": CONSENT_REDIRECT + "/"}, "redirect_uri"),
        ({"redirect_uri": CONSENT_REDIRECT + "?x=1"}, "redirect_uri"),
        ({"redirect_uri": "https://evil.example/consent/callback"}, "redirect_uri"),
        ({"scope": "openid api_keys:manage"}, "scope"),
        ({"expires_in": 30 * 24 * 3600 + 1}, "expires_in"),
        ({"code_challenge": None}, "code_challenge"),
        ({"code_challenge_method": "plain"}, "code_challenge_method"),
        ({"state": None}, "state"),
        ({"prompt": "none"}, "prompt"),
    ],
)
def test_bad_link_requests_are_refused_field_by_field(client, world, overrides, field):
    resp = client.post(
        f"/v1/partners/{world['p'].id}/consent-links",
        json=body(world, **overrides),
        headers=world["auth"]["p_owner"],
    )
    assert resp.status_code == 422
    assert field in resp.get_json()["errors"]


def test_a_partner_cannot_use_another_partners_client(client, world):
    resp = client.post(
        f"/v1/partners/{world['p'].id}/consent-links",
        json=body(world, client_id=world["q_app"].client_id),
        headers=world["auth"]["p_owner"],
    )
    assert resp.status_code == 422 and "client_id" in resp.get_json()["errors"]


def test_an_expired_or_unknown_link_says_so_in_plain_words(client, world):
    resp = client.post(
        f"/v1/partners/{world['p'].id}/consent-links",
        json=body(world),
        headers=world["auth"]["p_owner"],
    )
    path = urlsplit(resp.get_json()["url"]).path
    row = db.session.get(ConsentLink, path.rsplit("/", 1)[1])
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    for url in (path, "/c/lnk_doesnotexist"):
        page = client.get(url, headers={"Accept": "text/html"})
        assert page.status_code == 410
        assert "new link" in page.get_data(as_text=True)


def test_creating_a_link_is_audited(client, world):
    from idp.audit.models import AuditEvent

    client.post(
        f"/v1/partners/{world['p'].id}/consent-links",
        json=body(world),
        headers={**world["auth"]["p_machine"], "X-Request-Id": "req-link"},
    )
    event = db.session.scalar(
        db.select(AuditEvent).where(AuditEvent.action == "consent_link.created")
    )
    assert event.actor_type == "client" and event.actor_id == world["p_app"].client_id
    assert event.organization_id == world["p"].id and event.request_id == "req-link"
    assert event.after["redirect_uri"] == CONSENT_REDIRECT

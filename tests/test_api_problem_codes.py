"""Each problem code ``/openapi.json`` lists for an operation is one a real request gets.

``test_api_contract`` sends each operation its cheap refusals; the answers that need a
particular state (a partner at its maximum of clients, an accepted invitation, a grant that
no longer covers a channel) are reached here.  Each test says, with ``@reaches``, which
documented answers its requests get; the decorator records every problem answer the app
gives during the test and fails the test when one of them was not given, so a test cannot
claim an answer it does not reach.  A test elsewhere (a per-area API test that reaches a code
already) may carry ``@reaches`` too.  ``test_api_contract`` fails for any documented answer
that neither its cases nor a ``@reaches`` test that ran and passed gets: a skipped, failed
or deselected test reaches nothing (``tests/fixtures/outcomes.py`` runs a test that did not
run in the session on its own, so the check holds in a run of a few files too).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import request, request_finished

from idp.apikeys import service as apikeys_service
from idp.apikeys.models import ChannelApiKey
from idp.channels import service as channel_service
from idp.channels.models import Channel
from idp.errors import PROBLEM_JSON
from idp.extensions import db
from idp.oauth.clients import MAX_CLIENTS_PER_PARTNER
from idp.oauth.models import OAuthClient
from idp.orgs import members
from idp.orgs import service as orgs_service
from idp.orgs.models import Invitation, Membership
from idp.support.controls import disable_account
from idp.webhooks import service as webhook_service
from idp.webhooks.models import WebhookEndpoint
from policies.actor import Actor
from tests.accounts.helpers import deliver_mail, received_link, submit_form
from tests.channels.conftest import PROVISIONING_SCOPE, provisioning_bearer
from tests.consent.factories import make_consent_client, make_grant
from tests.consent.interleave import Competitor, pause_before
from tests.factories import bearer_for, make_channel, make_org, make_user
from tests.orgs.test_invitation_accept import NEW_PASSWORD
from tests.support.test_races import _support_admin

Answer = tuple[str, str, str, str]  # method, documented path, status, code

ROOT = Path(__file__).resolve().parents[1]

# Every answer a ``@reaches`` test gets -> the node ids of the tests that get it.
REACHED: dict[Answer, set[str]] = {}


def _documented_path(rule: str) -> str:
    """``/v1/partners/<partner_id>`` as the document writes it: ``/v1/partners/{partner_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@contextlib.contextmanager
def recorded_answers():
    """The (method, path, status, code) of every problem answer given inside the block."""
    seen: set[Answer] = set()

    def record(sender, response, **extra) -> None:
        if request.url_rule is None or response.mimetype != PROBLEM_JSON:
            return
        code = (response.get_json(silent=True) or {}).get("code")
        path = _documented_path(request.url_rule.rule)
        seen.add((request.method, path, str(response.status_code), code))

    request_finished.connect(record)
    try:
        yield seen
    finally:
        request_finished.disconnect(record)


def every_reached_answer() -> dict[Answer, set[str]]:
    """``REACHED``, once every test module with a ``@reaches`` test is imported."""
    tests = Path(__file__).parent
    for path in sorted(tests.rglob("test_*.py")):
        if "@reaches(" in path.read_text(encoding="utf-8"):
            importlib.import_module(".".join(path.relative_to(tests.parent).with_suffix("").parts))
    return REACHED


def reaches(*answers: str):
    """Decorator: the test's requests get each answer, written ``"POST /v1/path 409 code"``."""
    expected = [tuple(answer.split()) for answer in answers]
    assert all(len(answer) == 4 for answer in expected), answers

    def decorate(test):
        nodeid = f"{Path(inspect.getfile(test)).relative_to(ROOT).as_posix()}::{test.__name__}"
        for answer in expected:
            REACHED.setdefault(answer, set()).add(nodeid)

        @functools.wraps(test)
        def wrapper(*args, **kwargs):
            with recorded_answers() as seen:
                test(*args, **kwargs)
            missing = [" ".join(answer) for answer in expected if answer not in seen]
            assert missing == [], f"{test.__name__} never got: {missing}"

        return wrapper

    return decorate


# --------------------------------------------------------------------------- the tests


@pytest.fixture
def partner(app_ctx):
    """A partner, its owner's token, and the policy actor of that owner."""
    org = make_org("partner", "Acme Messaging")
    owner = make_user("partner", org, "owner")
    db.session.commit()
    roles = frozenset({"owner"})
    actor = Actor(hub="partner", organization_id=org.id, roles=roles, user_id=owner.id)
    return SimpleNamespace(id=org.id, org=org, bearer=bearer_for(owner, org), actor=actor)


@reaches("POST /v1/partners/{partner_id}/oauth-clients 409 too_many_clients")
def test_a_partner_at_its_maximum_of_clients_gets_no_more(client, partner):
    for _ in range(MAX_CLIENTS_PER_PARTNER):
        make_consent_client(partner.org)
    db.session.commit()
    url = f"/v1/partners/{partner.id}/oauth-clients"
    body = {"name": "One too many", "redirect_uris": ["https://acme.example/cb"]}

    res = client.post(url, json=body, headers=partner.bearer)

    assert (res.status_code, res.get_json()["code"]) == (409, "too_many_clients")
    listed = client.get(url, headers=partner.bearer).get_json()
    assert len(listed) == MAX_CLIENTS_PER_PARTNER


@reaches("DELETE /v1/partners/{partner_id}/invitations/{invitation_id} 409 invitation_accepted")
def test_an_accepted_invitation_cannot_be_revoked(app, client, partner, smtp_server):
    mailbox, smtp_url = smtp_server
    invited = client.post(
        f"/v1/partners/{partner.id}/invitations",
        json={"email": "joiner@example.com", "role": "member"},
        headers=partner.bearer,
    )
    assert invited.status_code == 201
    deliver_mail(app, smtp_url)
    link = received_link(mailbox, "joiner@example.com", index=-1)
    accepted = submit_form(client, link, password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    assert accepted.status_code == 200

    res = client.delete(
        f"/v1/partners/{partner.id}/invitations/{invited.get_json()['id']}",
        headers=partner.bearer,
    )

    assert (res.status_code, res.get_json()["code"]) == (409, "invitation_accepted")
    members = sa.select(Membership.role).where(Membership.organization_id == partner.id)
    assert sorted(db.session.scalars(members)) == ["member", "owner"]


@reaches("POST /v1/channels/{channel_id}/status 409 status_changed")
def test_a_status_change_overtaken_by_another_is_409_and_the_first_one_holds(
    app, client, app_ctx, monkeypatch
):
    support = make_org("support", "Platform")
    channel_id = make_channel(make_org("client", "Racer"), "live").id
    bearer = provisioning_bearer(support)
    provisioning = Actor(
        hub="support",
        organization_id=support.id,
        scopes=frozenset(PROVISIONING_SCOPE.split()),
        client_id="provisioning",
    )
    db.session.remove()

    def suspend():
        channel_service.change_status(provisioning, channel_id, "suspended", "abuse report")

    first = Competitor(app, suspend)
    pause_before(monkeypatch, channel_service, "can_transition", first)
    res = client.post(
        f"/v1/channels/{channel_id}/status",
        json={"status": "terminated", "reason": "closed"},
        headers=bearer,
    )
    first.finish()

    assert (res.status_code, res.get_json()["code"]) == (409, "status_changed")
    assert db.session.get(Channel, channel_id).status == "suspended"


@reaches("PUT /v1/partners/{partner_id}/webhook 409 webhook_set_meanwhile")
def test_a_first_webhook_url_set_twice_at_once_is_409_for_the_second(
    app, client, partner, monkeypatch
):
    def set_first():
        webhook_service.set_endpoint(partner.actor, partner.id, "https://first.example/hooks")

    first = Competitor(app, set_first)
    pause_before(monkeypatch, webhook_service, "new_secret", first)
    res = client.put(
        f"/v1/partners/{partner.id}/webhook",
        json={"url": "https://second.example/hooks"},
        headers=partner.bearer,
    )
    first.finish()

    assert (res.status_code, res.get_json()["code"]) == (409, "webhook_set_meanwhile")
    shown = client.get(f"/v1/partners/{partner.id}/webhook", headers=partner.bearer)
    assert shown.get_json()["url"] == "https://first.example/hooks"


def _generate_a_key_while_disabled(app, client, monkeypatch, side: str):
    """A person of the ``side`` organization asks for a key while support disables them."""
    partner = make_org("partner", "Acme Messaging")
    business = make_org("client", "Alpha Shoes", onboarding_partner_id=partner.id)
    channel = make_channel(business, "live")
    db.session.commit()
    make_grant(business, partner, [channel])
    org = business if side == "client" else partner
    person = make_user(side, org, "owner")
    bearer = bearer_for(person, org)
    admin = _support_admin()
    url = f"/v1/{side}s/{org.id}/channels/{channel.id}/api-keys"
    person_id = person.id
    db.session.commit()
    db.session.remove()

    def disable():
        disable_account(admin, person_id, ticket="SUP-9", reason="account reported compromised")

    disabling = Competitor(app, disable)
    pause_before(monkeypatch, apikeys_service, "_hold_active_account", disabling)
    res = client.post(url, json={}, headers=bearer)
    disabling.finish()

    assert (res.status_code, res.get_json()["code"]) == (401, "unauthorized")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ChannelApiKey)) == 0


@reaches("POST /v1/clients/{client_id}/channels/{channel_id}/api-keys 401 unauthorized")
def test_a_client_user_disabled_while_generating_a_key_gets_none(app, client, app_ctx, monkeypatch):
    _generate_a_key_while_disabled(app, client, monkeypatch, "client")


@reaches("POST /v1/partners/{partner_id}/channels/{channel_id}/api-keys 401 unauthorized")
def test_a_partner_user_disabled_while_generating_a_key_gets_none(
    app, client, app_ctx, monkeypatch
):
    _generate_a_key_while_disabled(app, client, monkeypatch, "partner")


def _an_owner_disabled_while_acting(app, client, monkeypatch, partner, module, method, url, body):
    """The partner's owner sends ``method url`` while support disables them: refused, with
    nothing of the request written (the owner's own account is held until it commits)."""
    admin, owner_id = _support_admin(), partner.actor.user_id
    db.session.commit()
    db.session.remove()
    disabling = Competitor(
        app, lambda: disable_account(admin, owner_id, ticket="SUP-9", reason="taken over")
    )
    pause_before(monkeypatch, module, "hold_active_account", disabling)
    res = client.open(url, method=method, json=body, headers=partner.bearer)
    disabling.finish()
    assert (res.status_code, res.get_json()["code"]) == (401, "unauthorized")


def _member_of(partner) -> str:
    """A new member of ``partner``: their membership's id."""
    person = make_user("partner", partner.org, "member")
    db.session.commit()
    return person.memberships[0].id


@reaches("PATCH /v1/partners/{partner_id}/members/{membership_id} 401 unauthorized")
def test_an_owner_disabled_while_changing_a_role_changes_nothing(app, client, partner, monkeypatch):
    membership = _member_of(partner)
    url = f"/v1/partners/{partner.id}/members/{membership}"
    _an_owner_disabled_while_acting(
        app, client, monkeypatch, partner, members, "PATCH", url, {"role": "owner"}
    )
    assert _roles(partner.id)[membership] == "member"


@reaches("PATCH /v1/partners/{partner_id}/members/{membership_id} 409 member_inactive")
def test_a_disabled_member_cannot_be_made_owner(client, partner):
    person = make_user("partner", partner.org, "member", status="disabled")
    db.session.commit()
    membership = person.memberships[0].id
    res = client.patch(
        f"/v1/partners/{partner.id}/members/{membership}",
        json={"role": "owner"},
        headers=partner.bearer,
    )
    assert (res.status_code, res.get_json()["code"]) == (409, "member_inactive")
    assert _roles(partner.id)[membership] == "member"


@reaches("DELETE /v1/partners/{partner_id}/members/{membership_id} 401 unauthorized")
def test_an_owner_disabled_while_removing_a_member_removes_nobody(
    app, client, partner, monkeypatch
):
    membership = _member_of(partner)
    url = f"/v1/partners/{partner.id}/members/{membership}"
    _an_owner_disabled_while_acting(app, client, monkeypatch, partner, members, "DELETE", url, None)
    assert membership in _roles(partner.id)


@reaches("POST /v1/partners/{partner_id}/invitations 401 unauthorized")
def test_an_owner_disabled_while_inviting_invites_nobody(app, client, partner, monkeypatch):
    url = f"/v1/partners/{partner.id}/invitations"
    body = {"email": "new.person@example.com", "role": "owner"}
    _an_owner_disabled_while_acting(
        app, client, monkeypatch, partner, orgs_service, "POST", url, body
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 0


@reaches("POST /v1/partners/{partner_id}/oauth-clients 401 unauthorized")
def test_an_owner_disabled_while_creating_a_client_gets_no_secret(
    app, client, partner, monkeypatch
):
    url = f"/v1/partners/{partner.id}/oauth-clients"
    body = {"name": "Billing sync", "redirect_uris": ["https://acme.example/cb"]}
    _an_owner_disabled_while_acting(
        app, client, monkeypatch, partner, orgs_service, "POST", url, body
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OAuthClient)) == 0


@reaches("POST /v1/partners/{partner_id}/oauth-clients/{client_id}/secret 401 unauthorized")
def test_an_owner_disabled_while_rotating_a_client_secret_gets_none(
    app, client, partner, monkeypatch
):
    app_client = make_consent_client(partner.org)
    db.session.commit()
    client_id, before = app_client.client_id, app_client.client_secret_hash
    url = f"/v1/partners/{partner.id}/oauth-clients/{client_id}/secret"
    _an_owner_disabled_while_acting(
        app, client, monkeypatch, partner, orgs_service, "POST", url, {}
    )
    assert db.session.get(OAuthClient, client_id).client_secret_hash == before


@reaches("PUT /v1/partners/{partner_id}/webhook 401 unauthorized")
def test_an_owner_disabled_while_setting_the_webhook_sets_nothing(
    app, client, partner, monkeypatch
):
    url = f"/v1/partners/{partner.id}/webhook"
    body = {"url": "https://hooks.partner.example/idp"}
    _an_owner_disabled_while_acting(
        app, client, monkeypatch, partner, orgs_service, "PUT", url, body
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == 0


@reaches("POST /v1/partners/{partner_id}/webhook/rotate-secret 401 unauthorized")
def test_an_owner_disabled_while_rotating_the_webhook_secret_gets_none(
    app, client, partner, monkeypatch
):
    set_url = f"/v1/partners/{partner.id}/webhook"
    body = {"url": "https://hooks.partner.example/idp"}
    assert client.put(set_url, json=body, headers=partner.bearer).status_code == 200
    before = db.session.scalar(sa.select(WebhookEndpoint.secret_encrypted))
    url = f"/v1/partners/{partner.id}/webhook/rotate-secret"
    _an_owner_disabled_while_acting(
        app, client, monkeypatch, partner, orgs_service, "POST", url, None
    )
    assert db.session.scalar(sa.select(WebhookEndpoint.secret_encrypted)) == before


def _owners_of(partner) -> tuple[SimpleNamespace, SimpleNamespace]:
    """``partner``'s owner (its token, actor and membership id) and a second owner (token and
    membership id)."""
    person = make_user("partner", partner.org, "owner")
    db.session.commit()
    memberships = dict(
        db.session.execute(
            sa.select(Membership.user_id, Membership.id).where(
                Membership.organization_id == partner.id
            )
        ).all()
    )
    first = SimpleNamespace(
        actor=partner.actor, bearer=partner.bearer, membership=memberships[partner.actor.user_id]
    )
    second = SimpleNamespace(
        bearer=bearer_for(person, partner.org), membership=memberships[person.id]
    )
    db.session.remove()
    return first, second


def _roles(partner_id: str) -> dict[str, str]:
    """Each membership's role in the partner, by membership id."""
    db.session.remove()
    query = sa.select(Membership.id, Membership.role).where(
        Membership.organization_id == partner_id
    )
    return dict(db.session.execute(query).all())


def _while_the_other_owner(app, monkeypatch, change) -> Competitor:
    """``change`` commits while the request, its token checked, has read no membership yet.

    The request was sent when both were owners, and its token says it is one.
    """
    other = Competitor(app, change)
    pause_before(monkeypatch, members, "_locked", other)
    return other


@reaches("PATCH /v1/partners/{partner_id}/members/{membership_id} 403 forbidden")
def test_of_two_owners_demoting_each_other_at_once_the_second_is_no_longer_owner(
    app, client, partner, monkeypatch
):
    first, second = _owners_of(partner)
    demoting = _while_the_other_owner(
        app,
        monkeypatch,
        lambda: members.change_role(first.actor, partner.id, second.membership, "member"),
    )
    res = client.patch(
        f"/v1/partners/{partner.id}/members/{first.membership}",
        json={"role": "member"},
        headers=second.bearer,
    )
    demoting.finish()

    assert (res.status_code, res.get_json()["code"]) == (403, "forbidden")
    assert _roles(partner.id) == {first.membership: "owner", second.membership: "member"}


@reaches("PATCH /v1/partners/{partner_id}/members/{membership_id} 409 last_owner")
def test_of_two_owners_stepping_down_at_once_the_second_is_the_last_owner(
    app, client, partner, monkeypatch
):
    first, second = _owners_of(partner)
    stepping_down = _while_the_other_owner(
        app,
        monkeypatch,
        lambda: members.change_role(first.actor, partner.id, first.membership, "member"),
    )
    res = client.patch(
        f"/v1/partners/{partner.id}/members/{second.membership}",
        json={"role": "member"},
        headers=second.bearer,
    )
    stepping_down.finish()

    assert (res.status_code, res.get_json()["code"]) == (409, "last_owner")
    assert _roles(partner.id) == {first.membership: "member", second.membership: "owner"}


@reaches("DELETE /v1/partners/{partner_id}/members/{membership_id} 409 last_owner")
def test_of_two_owners_leaving_at_once_the_second_is_the_last_owner(
    app, client, partner, monkeypatch
):
    first, second = _owners_of(partner)
    leaving = _while_the_other_owner(
        app,
        monkeypatch,
        lambda: members.remove_member(first.actor, partner.id, first.membership),
    )
    res = client.delete(
        f"/v1/partners/{partner.id}/members/{second.membership}", headers=second.bearer
    )
    leaving.finish()

    assert (res.status_code, res.get_json()["code"]) == (409, "last_owner")
    assert _roles(partner.id) == {second.membership: "owner"}

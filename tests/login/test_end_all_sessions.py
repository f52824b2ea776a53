"""``idp sessions end-all``: every person signed out at once, machine tokens untouched."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo

from idp.audit.models import AuditEvent
from idp.cli import main
from idp.extensions import db
from tests.factories import make_org, make_user
from tests.oauth.conftest import (
    HUB_REDIRECT,
    BrowserClient,
    Flow,
    basic,
    introspect,
    make_platform_client,
    refresh,
    tokens_for,
)

TICKET = "INC-900"
REASON = "session store copied off a backup"


def _end_all(application, *options: str):
    arguments = ["sessions", "end-all", "--ticket", TICKET, "--reason", REASON, *options]
    return CliRunner().invoke(main, arguments, obj=ScriptInfo(create_app=lambda: application))


def _signed_in(flow: Flow) -> bool:
    """Whether the browser gets a code without typing a password (its login counts)."""
    return flow.authorize().headers["Location"].startswith(HUB_REDIRECT)


def _userinfo(http, access_token: str):
    return http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def _machine_token(http, client_id: str, secret: str) -> str:
    response = http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["access_token"]


def _ended_events() -> list[AuditEvent]:
    return db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.action == "accounts.sessions_ended")
    ).all()


def test_every_person_is_signed_out_and_machine_tokens_keep_working(app, partner_world, flow):
    owner = partner_world["owner"]
    tokens = tokens_for(flow, owner.email)
    platform, secret = make_platform_client(make_org("support", "Support"))
    machine = _machine_token(flow.http, platform.client_id, secret)
    assert _signed_in(flow)

    result = _end_all(app)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["ended 1 browser logins; revoked 1 token families"]
    assert not _signed_in(flow)
    assert refresh(flow.http, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert _userinfo(flow.http, tokens["access_token"]).status_code == 401
    answer = introspect(flow.http, machine, platform.client_id, secret).get_json()
    assert answer["active"] is True
    [event] = _ended_events()
    assert (event.actor_type, event.actor_id) == ("system", "sessions end-all")
    assert (event.ticket, event.reason) == (TICKET, REASON)
    assert {k: event.after[k] for k in ("hub", "logins_ended", "token_families_revoked")} == {
        "hub": None,
        "logins_ended": 1,
        "token_families_revoked": 1,
    }
    # Signing in again works: nothing was disabled.
    assert tokens_for(Flow(BrowserClient(app), nonce="again"), owner.email)["access_token"]


def test_one_hub_only_signs_out_that_hub_s_people(app, partner_world, flow):
    shop = make_org("client", "Shop")
    customer = make_user("client", shop, "owner")
    db.session.commit()
    partner_tokens = tokens_for(flow, partner_world["owner"].email)
    client_flow = Flow(BrowserClient(app), client_id="client-hub")
    client_tokens = tokens_for(client_flow, customer.email)

    result = _end_all(app, "--hub", "client")

    assert result.exit_code == 0, result.output
    assert not _signed_in(client_flow)
    assert (
        refresh(client_flow.http, client_tokens["refresh_token"], "client-hub").status_code == 400
    )
    assert _signed_in(flow)
    assert refresh(flow.http, partner_tokens["refresh_token"]).status_code == 200
    [event] = _ended_events()
    assert event.after["hub"] == "client" and event.after["logins_ended"] == 1


def test_many_people_are_signed_out_batch_by_batch(app, partner_world, hub_clients):
    people = [make_user("partner", partner_world["acme"], "member") for _ in range(5)]
    db.session.commit()
    flows = [Flow(BrowserClient(app), nonce=f"nonce-{n}") for n in range(len(people))]
    tokens = [tokens_for(f, person.email) for f, person in zip(flows, people)]

    result = _end_all(app, "--batch", "2")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["ended 5 browser logins; revoked 5 token families"]
    assert not any(_signed_in(f) for f in flows)
    assert all(
        refresh(f.http, t["refresh_token"]).status_code == 400 for f, t in zip(flows, tokens)
    )


def test_a_run_stopped_midway_records_what_it_ended(app, hub_clients, monkeypatch):
    from idp.login import end_all

    shop = make_org("client", "Shop")
    people = sorted((make_user("client", shop, "owner") for _ in range(2)), key=lambda p: p.id)
    db.session.commit()
    flows = [Flow(BrowserClient(app), client_id="client-hub", nonce=f"n{n}") for n in (1, 2)]
    for f, person in zip(flows, people):
        tokens_for(f, person.email)
    revoke, calls = end_all._revoke_families, []

    def fails_the_second_time(user_ids):
        calls.append(user_ids)
        if len(calls) == 2:
            raise OSError("connection lost")
        return revoke(user_ids)

    monkeypatch.setattr(end_all, "_revoke_families", fails_the_second_time)

    result = _end_all(app, "--hub", "client", "--batch", "1")

    assert result.exit_code != 0
    assert [_signed_in(f) for f in flows] == [False, True]
    [event] = _ended_events()
    assert (event.after["finished"], event.after["logins_ended"]) == (False, 1)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--reason", REASON], "--ticket"),
        (["--ticket", TICKET], "--reason"),
        (["--ticket", " ", "--reason", REASON], "ticket"),
        (["--ticket", TICKET, "--reason", REASON, "--hub", "nowhere"], "--hub"),
    ],
)
def test_bad_input_is_refused_and_nobody_is_signed_out(app, partner_world, flow, options, named):
    tokens_for(flow, partner_world["owner"].email)

    result = CliRunner().invoke(
        main, ["sessions", "end-all", *options], obj=ScriptInfo(create_app=lambda: app)
    )

    assert result.exit_code in (1, 2) and named in result.output
    assert _signed_in(flow)
    assert _ended_events() == []


@pytest.mark.redis
def test_another_instance_signs_them_out_on_its_next_request(app, partner_world, redis_instances):
    one, two = redis_instances
    flow = Flow(BrowserClient(two))
    tokens = tokens_for(flow, partner_world["owner"].email)
    # The other instance has checked the access token: it holds the family as live.
    assert _userinfo(flow.http, tokens["access_token"]).status_code == 200

    with one.app_context():  # the command runs in the context it finds
        result = _end_all(one)

    assert result.exit_code == 0, result.output
    assert _userinfo(flow.http, tokens["access_token"]).status_code == 401
    assert not _signed_in(flow)
    assert refresh(flow.http, tokens["refresh_token"]).status_code == 400

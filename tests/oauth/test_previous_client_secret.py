"""A rotated client secret may keep working for a grace period: integrations move without downtime.

The partner API and ``idp clients rotate-secret`` take the period; both
secrets authenticate the client until it ends (or is ended early), and then
the previous one fails as any wrong secret does, on every instance, on the
very next request, whether the period ran out on the clock or was ended by a
write.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.oauth import models as oauth_models
from idp.oauth.models import OAuthClient
from idp.timeutil import utcnow
from tests.factories import bearer_for, make_org, make_user
from tests.instances import Reads
from tests.oauth.conftest import (
    BrowserClient,
    basic,
    introspect,
    make_partner_client,
    make_platform_client,
)
from tests.oauth.test_clients_cli import SCOPES, client_token, events, printed_secret, run

DAY = 86400


@pytest.fixture
def partner(app):
    with app.app_context():
        acme = make_org("partner", "Acme")
        support = make_org("support", "Support")
        client, secret = make_partner_client(acme)
        platform, platform_secret = make_platform_client(support)
        world = {
            "acme": acme.id,
            "client": client.client_id,
            "secret": secret,
            "platform": (platform.client_id, platform_secret),
            "owner": bearer_for(make_user("partner", acme, "owner"), acme),
            "member": bearer_for(make_user("partner", acme, "member"), acme),
        }
        db.session.remove()
    return world


def _url(world, tail: str = "/secret") -> str:
    return f"/v1/partners/{world['acme']}/oauth-clients/{world['client']}{tail}"


def _rotate(http, world, **body):
    kwargs = {"json": body} if body else {}
    return http.post(_url(world), headers=world["owner"], **kwargs)


def _token(http, client_id: str, secret: str) -> int:
    return http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    ).status_code


def _listed(http, world) -> dict:
    listed = http.get(f"/v1/partners/{world['acme']}/oauth-clients", headers=world["owner"])
    [client] = [c for c in listed.get_json() if c["client_id"] == world["client"]]
    return client


def _moment(timestamp: str) -> datetime:
    """A response's ``...Z`` timestamp as a naive UTC datetime."""
    return datetime.fromisoformat(timestamp.removesuffix("Z"))


@pytest.fixture
def later(monkeypatch):
    """Moves the clock the secret checks read forward by some seconds (no row changes)."""

    def move(seconds: int) -> None:
        moment = utcnow() + timedelta(seconds=seconds)
        monkeypatch.setattr(oauth_models, "utcnow", lambda: moment)

    return move


def test_both_secrets_work_during_the_grace_period_and_only_the_new_one_after(app, partner, later):
    http = BrowserClient(app)
    rotated = _rotate(http, partner, previous_secret_expires_in=3600)
    assert rotated.status_code == 201, rotated.text
    body = rotated.get_json()
    new = body["client_secret"]
    assert body["previous_secret_expires_at"] is not None
    assert _token(http, partner["client"], partner["secret"]) == 200
    assert _token(http, partner["client"], new) == 200
    assert _token(http, partner["client"], "not-the-secret") == 401

    later(3601)
    assert _token(http, partner["client"], partner["secret"]) == 401
    assert _token(http, partner["client"], new) == 200


def test_introspection_accepts_the_previous_secret_of_a_platform_client(app, partner, later):
    http = BrowserClient(app)
    access = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(partner["client"], partner["secret"]),
    ).get_json()["access_token"]
    platform_id, old = partner["platform"]
    rotated = run(app, "rotate-secret", platform_id, "--grace", "1m")
    assert rotated.exit_code == 0, rotated.output
    _, new = printed_secret(rotated.output)
    for secret in (old, new):
        assert introspect(http, access, platform_id, secret).get_json()["active"] is True
    later(61)
    assert introspect(http, access, platform_id, old).status_code == 401
    assert introspect(http, access, platform_id, new).get_json()["active"] is True


def test_without_a_grace_period_the_old_secret_stops_at_once(app, partner):
    http = BrowserClient(app)
    rotated = _rotate(http, partner, previous_secret_expires_in=0)
    assert rotated.status_code == 201
    assert rotated.get_json()["previous_secret_expires_at"] is None
    assert _token(http, partner["client"], partner["secret"]) == 401
    assert _listed(http, partner)["previous_secret_expires_at"] is None


def test_the_listing_says_until_when_the_previous_secret_works_and_never_shows_it(app, partner):
    http = BrowserClient(app)
    assert _listed(http, partner)["previous_secret_expires_at"] is None
    before = utcnow()
    rotated = _rotate(http, partner, previous_secret_expires_in=DAY)
    listed = _listed(http, partner)
    until = listed["previous_secret_expires_at"]
    assert until == rotated.get_json()["previous_secret_expires_at"]
    day_later = (before + timedelta(days=1)).replace(microsecond=0)
    assert day_later <= _moment(until) <= utcnow() + timedelta(days=1)
    assert partner["secret"] not in str(listed)
    with app.app_context():
        stored = db.session.get(OAuthClient, partner["client"]).previous_secret_hash
    assert stored not in str(listed)


def test_a_second_rotation_keeps_only_the_then_current_secret(app, partner):
    http = BrowserClient(app)
    second = _rotate(http, partner, previous_secret_expires_in=DAY).get_json()["client_secret"]
    third = _rotate(http, partner, previous_secret_expires_in=600).get_json()["client_secret"]
    assert _token(http, partner["client"], partner["secret"]) == 401
    assert _token(http, partner["client"], second) == 200
    assert _token(http, partner["client"], third) == 200
    # The period is the second rotation's, not the first's.
    until = _listed(http, partner)["previous_secret_expires_at"]
    assert _moment(until) <= utcnow() + timedelta(seconds=600)


@pytest.mark.parametrize("value", [-1, 7 * DAY + 1, "3600", 1.5, None, True])
def test_a_grace_period_out_of_bounds_is_refused_and_changes_nothing(app, partner, value):
    http = BrowserClient(app)
    refused = _rotate(http, partner, previous_secret_expires_in=value)
    assert refused.status_code == 422, refused.text
    assert "previous_secret_expires_in" in refused.text
    assert _token(http, partner["client"], partner["secret"]) == 200
    with app.app_context():
        assert db.session.scalars(db.select(AuditEvent.action)).all() == []


def test_seven_days_is_the_longest_grace_period(app, partner):
    rotated = _rotate(BrowserClient(app), partner, previous_secret_expires_in=7 * DAY)
    assert rotated.status_code == 201, rotated.text


def test_the_rotation_records_the_grace_period_and_its_end(app, partner):
    http = BrowserClient(app)
    rotated = _rotate(http, partner, previous_secret_expires_in=900).get_json()
    with app.app_context():
        [event] = db.session.scalars(
            db.select(AuditEvent).where(AuditEvent.action == "oauth_client.secret_rotated")
        ).all()
        after = event.after
    assert after["previous_secret_expires_in"] == 900
    assert after["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]


def test_ending_the_grace_period_early_refuses_the_previous_secret_at_once(app, partner):
    http = BrowserClient(app)
    new = _rotate(http, partner, previous_secret_expires_in=DAY).get_json()["client_secret"]
    ended = http.open(_url(partner, "/previous-secret"), method="DELETE", headers=partner["owner"])
    assert ended.status_code == 204, ended.text
    assert _token(http, partner["client"], partner["secret"]) == 401
    assert _token(http, partner["client"], new) == 200
    assert _listed(http, partner)["previous_secret_expires_at"] is None
    with app.app_context():
        [event] = db.session.scalars(
            db.select(AuditEvent).where(AuditEvent.action == "oauth_client.previous_secret_expired")
        ).all()
        assert (event.target_id, event.organization_id) == (partner["client"], partner["acme"])
    # Ending it again changes nothing and records nothing.
    again = http.open(_url(partner, "/previous-secret"), method="DELETE", headers=partner["owner"])
    assert again.status_code == 204
    with app.app_context():
        assert (
            db.session.scalar(
                db.select(db.func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "oauth_client.previous_secret_expired")
            )
            == 1
        )


@pytest.mark.parametrize(("actor", "status"), [("member", 403), ("other", 404), ("none", 401)])
def test_only_an_owner_of_the_partner_ends_the_grace_period(app, partner, actor, status):
    http = BrowserClient(app)
    _rotate(http, partner, previous_secret_expires_in=DAY)
    with app.app_context():
        globex = make_org("partner", "Globex")
        other = bearer_for(make_user("partner", globex, "owner"), globex)
        db.session.remove()
    headers = {"member": partner["member"], "other": other, "none": {}}[actor]
    ended = http.open(_url(partner, "/previous-secret"), method="DELETE", headers=headers)
    assert ended.status_code == status
    assert _token(http, partner["client"], partner["secret"]) == 200


# --------------------------------------------------------------------------- the command


def test_the_command_takes_a_grace_period_and_the_listing_shows_its_end(app):
    client_id, old = printed_secret(run(app, "create-platform", "--name", "P", *SCOPES).output)
    rotated = run(app, "rotate-secret", client_id, "--grace", "24h")
    assert rotated.exit_code == 0, rotated.output
    _, new = printed_secret(rotated.output)
    assert "the previous secret works until " in rotated.output
    assert client_token(app, client_id, old).status_code == 200
    assert client_token(app, client_id, new).status_code == 200
    listed = run(app, "list").output
    assert "previous secret works until" in listed
    assert old not in listed and new not in listed
    [event] = [e for e in events(app) if e.action == "oauth_client.secret_rotated"]
    assert event.after["previous_secret_expires_in"] == DAY


@pytest.mark.parametrize(("given", "seconds"), [("90", 90), ("30m", 1800), ("7d", 7 * DAY)])
def test_the_grace_period_is_given_in_seconds_or_with_a_unit(app, given, seconds):
    client_id, _ = printed_secret(run(app, "create-platform", "--name", "P", *SCOPES).output)
    rotated = run(app, "rotate-secret", client_id, "--grace", given)
    assert rotated.exit_code == 0, rotated.output
    [event] = [e for e in events(app) if e.action == "oauth_client.secret_rotated"]
    assert event.after["previous_secret_expires_in"] == seconds


@pytest.mark.parametrize("given", ["8d", "604801", "-5", "1w", "soon", "1.5h", ""])
def test_a_bad_grace_period_is_refused_and_the_secret_stays(app, given):
    client_id, old = printed_secret(run(app, "create-platform", "--name", "P", *SCOPES).output)
    refused = run(app, "rotate-secret", client_id, "--grace", given)
    assert refused.exit_code == 2, refused.output
    assert "--grace" in refused.output and "7 days" in refused.output
    assert client_token(app, client_id, old).status_code == 200
    assert sorted(e.action for e in events(app)) == ["oauth_client.created", "organization.created"]


def test_the_command_ends_the_grace_period_early(app):
    client_id, old = printed_secret(run(app, "create-platform", "--name", "P", *SCOPES).output)
    _, new = printed_secret(run(app, "rotate-secret", client_id, "--grace", "1h").output)
    ended = run(app, "expire-previous-secret", client_id)
    assert ended.exit_code == 0, ended.output
    assert "previous secret" in ended.output and "no longer works" in ended.output
    assert client_token(app, client_id, old).get_json()["error"] == "invalid_client"
    assert client_token(app, client_id, new).status_code == 200
    [event] = [e for e in events(app) if e.action == "oauth_client.previous_secret_expired"]
    assert (event.actor_id, event.target_id) == ("clients expire-previous-secret", client_id)
    again = run(app, "expire-previous-secret", client_id)
    assert again.exit_code == 0 and "no previous secret" in again.output
    assert len([e for e in events(app) if e.action.endswith("previous_secret_expired")]) == 1
    assert run(app, "expire-previous-secret", "oc_nope").exit_code == 1


# --------------------------------------------------------------------------- every instance


@pytest.mark.redis
def test_an_expired_previous_secret_is_refused_by_a_warm_instance_without_a_read(
    redis_instances, partner, later
):
    one, two = redis_instances
    rotated = _rotate(one.test_client(), partner, previous_secret_expires_in=600)
    new = rotated.get_json()["client_secret"]
    http = two.test_client()
    for _ in range(3):  # warm: what a request finds is kept from its second time on
        assert _token(http, partner["client"], partner["secret"]) == 200
        assert _token(http, partner["client"], new) == 200
    later(601)
    with Reads(two, "oauth_clients") as reads:
        assert _token(http, partner["client"], partner["secret"]) == 401
        assert _token(http, partner["client"], new) == 200
    assert reads.count == 0  # the clock decided, not a fresh read of the client


@pytest.mark.redis
def test_a_grace_period_ended_on_one_instance_is_seen_by_the_other_at_once(
    redis_instances, partner
):
    one, two = redis_instances
    new = _rotate(one.test_client(), partner, previous_secret_expires_in=DAY).get_json()
    http = two.test_client()
    assert _token(http, partner["client"], partner["secret"]) == 200
    ended = one.test_client().delete(_url(partner, "/previous-secret"), headers=partner["owner"])
    assert ended.status_code == 204
    assert _token(http, partner["client"], partner["secret"]) == 401
    assert _token(http, partner["client"], new["client_secret"]) == 200


# --------------------------------------------------------------------------- rotations at once


@pytest.mark.postgres
def test_two_rotations_at_once_leave_both_new_secrets_working(app, partner, monkeypatch):
    """The later rotation keeps the earlier one's secret as the previous one, not the older."""
    from idp.oauth import clients, operator_clients
    from idp.operator import operator_actor
    from tests.consent.interleave import Competitor, pause_before

    def rotate_elsewhere():
        actor = operator_actor("clients rotate-secret")
        return operator_clients.rotate_client_secret(partner["client"], actor=actor, grace=3600)[1]

    competitor = Competitor(app, rotate_elsewhere)
    pause_before(monkeypatch, clients, "new_secret", competitor)
    http = BrowserClient(app)
    first = _rotate(http, partner, previous_secret_expires_in=3600)
    assert first.status_code == 201, first.text
    second = competitor.finish()
    assert _token(http, partner["client"], first.get_json()["client_secret"]) == 200
    assert _token(http, partner["client"], second) == 200
    assert _token(http, partner["client"], partner["secret"]) == 401


def test_the_database_refuses_a_previous_secret_without_its_end(app, partner):
    """A previous secret with no expiry could never be checked: no row may hold one."""
    with app.app_context():
        client = db.session.get(OAuthClient, partner["client"])
        client.previous_secret_hash = client.client_secret_hash
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()

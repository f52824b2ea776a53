"""``idp purge``: what outlived any use goes, what still decides something stays."""

from __future__ import annotations

import logging
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from idp.accounts.models import EmailToken, User
from idp.audit.models import AuditEvent
from idp.audit.service import record_event
from idp.cli import purge_command
from idp.extensions import db
from idp.ids import PREFIXES, new_id, new_time_ordered_id
from idp.janitor import TABLES, purge
from idp.login import throttle
from idp.login.models import LoginFailure, LoginSession
from idp.login.session import LAST_SEEN_EVERY
from idp.mfa import totp
from idp.mfa.models import TwoStepSecret
from idp.mfa.service import ENROLMENT_TTL
from idp.oauth.models import (
    AuthorizationCode,
    OAuthClient,
    RefreshToken,
    TokenFamily,
    sha256_hex,
)
from idp.outbox import worker
from idp.outbox.models import OutboxMessage
from idp.outbox.service import enqueue_email
from idp.timeutil import utcnow
from tests.factories import make_org, make_user
from tests.oauth.conftest import (
    HUB_REDIRECT,
    BrowserClient,
    Flow,
    introspect,
    make_hub_clients,
    make_platform_client,
    refresh,
    tokens_for,
)

CLIENT = "partner-hub"


@pytest.fixture
def world(app_ctx):
    """A partner owner, a browser's code flow, and the cutoff: what stopped counting before goes."""
    make_hub_clients()
    user = make_user("partner", make_org("partner", "Acme"), "owner")
    db.session.commit()
    kept = timedelta(seconds=app_ctx.config["IDP_PURGE_AFTER"])
    # A code is kept as long as the family it opened can live, if that is longer.
    codes_kept = max(kept, timedelta(seconds=app_ctx.config["IDP_REFRESH_TOKEN_TTL"]))
    return {
        "user": user,
        "flow": Flow(BrowserClient(app_ctx)),
        "cutoff": utcnow() - kept,
        "code_cutoff": utcnow() - codes_kept,
    }


def _code(user, *, expires_at, used=True, family_id=None, plain=None) -> str:
    row_id = new_time_ordered_id(PREFIXES["authorization_code"])
    db.session.add(
        AuthorizationCode(
            id=row_id,
            code_hash=sha256_hex(plain or secrets.token_urlsafe(16)),
            client_id=CLIENT,
            user_id=user.id,
            redirect_uri=HUB_REDIRECT,
            scope="openid",
            code_challenge="unused",
            code_challenge_method="S256",
            auth_time=0,
            created_at=expires_at - timedelta(seconds=60),
            expires_at=expires_at,
            used_at=expires_at - timedelta(seconds=30) if used else None,
            family_id=family_id,
        )
    )
    db.session.commit()
    return row_id


def _family(user, *, expires_at, revoked_at=None, tokens=2) -> str:
    row_id = new_time_ordered_id(PREFIXES["token_family"])
    db.session.add(
        TokenFamily(
            id=row_id,
            client_id=CLIENT,
            user_id=user.id,
            expires_at=expires_at,
            revoked_at=revoked_at,
        )
    )
    for _ in range(tokens):
        db.session.add(
            RefreshToken(
                id=new_time_ordered_id(PREFIXES["refresh_token"]),
                token_hash=sha256_hex(secrets.token_urlsafe(16)),
                family_id=row_id,
            )
        )
    db.session.commit()
    return row_id


def _session(user, *, created_at, ended_at=None, last_seen_at=None) -> str:
    row_id = secrets.token_urlsafe(24)
    db.session.add(
        LoginSession(
            id=row_id,
            user_id=user.id,
            created_at=created_at,
            ended_at=ended_at,
            last_seen_at=last_seen_at,
        )
    )
    db.session.commit()
    return row_id


def _failure(last_failed_at) -> str:
    key = secrets.token_hex(32)
    db.session.add(LoginFailure(key=key, failures=5, last_failed_at=last_failed_at))
    db.session.commit()
    return key


def _link(*, expires_at, used_at=None) -> str:
    """A pending sign-up's link, with the password hash it carries until it is used."""
    row_id = new_id(PREFIXES["email_token"])
    db.session.add(
        EmailToken(
            id=row_id,
            purpose="signup",
            token_hash=sha256_hex(secrets.token_urlsafe(16)),
            email_normalized=f"{row_id}@example.com",
            payload={"password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"},
            created_at=expires_at - timedelta(hours=24),
            expires_at=expires_at,
            used_at=used_at,
        )
    )
    db.session.commit()
    return row_id


def _set_up(*, created_at, enabled_at=None) -> str:
    """The authenticator secret of a new account's two-step set-up, begun at ``created_at``."""
    user = make_user("partner")
    sealed = totp.seal(totp.new_secret(), user.id)
    db.session.add(
        TwoStepSecret(
            user_id=user.id, sealed_secret=sealed, created_at=created_at, enabled_at=enabled_at
        )
    )
    db.session.commit()
    return user.id


def _ids(model) -> set[str]:
    key = model.__table__.primary_key.columns.values()[0]
    db.session.expire_all()
    return set(db.session.scalars(sa.select(key)))


def _rows() -> dict[str, int]:
    db.session.expire_all()
    return {
        name: db.session.scalar(sa.select(sa.func.count()).select_from(sa.table(name)))
        for name in TABLES
    }


def _one_of_each_to_purge(world) -> None:
    user, cutoff = world["user"], world["cutoff"]
    long_ago = cutoff - timedelta(minutes=1)
    _code(user, expires_at=world["code_cutoff"] - timedelta(minutes=1))
    _family(user, expires_at=long_ago)
    _session(user, created_at=long_ago, ended_at=long_ago)
    _failure(long_ago)
    _link(expires_at=long_ago)
    _set_up(created_at=long_ago - ENROLMENT_TTL)


def test_old_codes_go_used_or_not_and_those_within_retention_stay(app, world):
    user, cutoff = world["user"], world["code_cutoff"]
    old_used = _code(user, expires_at=cutoff - timedelta(minutes=1))
    old_unused = _code(user, expires_at=cutoff - timedelta(minutes=1), used=False)
    kept_used = _code(user, expires_at=cutoff + timedelta(minutes=1))
    unexpired = _code(user, expires_at=utcnow() + timedelta(seconds=60), used=False)

    assert purge()["oauth_authorization_codes"] == 2

    assert _ids(AuthorizationCode) == {kept_used, unexpired}
    assert not {old_used, old_unused} & _ids(AuthorizationCode)


def test_families_long_expired_or_revoked_go_with_their_refresh_tokens(app, world):
    user, cutoff = world["user"], world["cutoff"]
    expired = _family(user, expires_at=cutoff - timedelta(minutes=1))
    revoked = _family(
        user, expires_at=utcnow() + timedelta(days=20), revoked_at=cutoff - timedelta(minutes=1)
    )
    recently_expired = _family(user, expires_at=cutoff + timedelta(minutes=1))
    recently_revoked = _family(
        user, expires_at=utcnow() + timedelta(days=20), revoked_at=cutoff + timedelta(minutes=1)
    )
    live = _family(user, expires_at=utcnow() + timedelta(days=20))

    counts = purge()

    assert (counts["token_families"], counts["oauth_refresh_tokens"]) == (2, 4)
    assert _ids(TokenFamily) == {recently_expired, recently_revoked, live}
    left = {t.family_id for t in db.session.scalars(sa.select(RefreshToken))}
    assert left == {recently_expired, recently_revoked, live}
    assert not {expired, revoked} & left


def test_a_code_naming_a_purged_family_stays_unlinked_and_its_replay_is_refused(app, world):
    """A code of the older exchanges names its family; it may outlive a family revoked early."""
    user, cutoff, flow = world["user"], world["cutoff"], world["flow"]
    family = _family(
        user, expires_at=utcnow() + timedelta(days=20), revoked_at=cutoff - timedelta(seconds=10)
    )
    code = _code(user, expires_at=cutoff + timedelta(seconds=20), family_id=family, plain="legacy")

    assert purge()["token_families"] == 1

    assert _ids(TokenFamily) == set()
    assert db.session.get(AuthorizationCode, code).family_id is None
    replay = flow.exchange("legacy")
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"


def test_ended_and_too_old_login_sessions_go_and_open_ones_stay(app, world):
    user, cutoff = world["user"], world["cutoff"]
    max_age = timedelta(seconds=app.config["IDP_SESSION_MAX_AGE"])
    long_ago = cutoff - timedelta(minutes=1)
    ended_long_ago = _session(user, created_at=long_ago - timedelta(hours=1), ended_at=long_ago)
    ended_lately = _session(user, created_at=long_ago, ended_at=cutoff + timedelta(minutes=1))
    past_max_age_long_ago = _session(user, created_at=long_ago - max_age)
    past_max_age_lately = _session(user, created_at=cutoff - max_age + timedelta(minutes=1))
    open_now = _session(user, created_at=utcnow())

    assert purge()["login_sessions"] == 2

    assert _ids(LoginSession) == {ended_lately, past_max_age_lately, open_now}
    assert not {ended_long_ago, past_max_age_long_ago} & _ids(LoginSession)


def test_login_sessions_signed_out_by_idleness_go_like_ended_ones(app, world):
    """A login unused past the idle timeout is signed out (its cookie has expired): its
    device and address are kept ``IDP_PURGE_AFTER`` from then, not until it ages out."""
    user, cutoff = world["user"], world["cutoff"]
    idle = timedelta(seconds=app.config["IDP_SESSION_IDLE_TIMEOUT"] + LAST_SEEN_EVERY)
    started = utcnow() - timedelta(hours=1)  # well within IDP_SESSION_MAX_AGE
    idle_long_ago = _session(
        user, created_at=started, last_seen_at=cutoff - idle - timedelta(minutes=1)
    )
    idle_lately = _session(
        user, created_at=started, last_seen_at=cutoff - idle + timedelta(minutes=1)
    )
    in_use = _session(user, created_at=started, last_seen_at=utcnow())
    from_before = _session(user, created_at=started)  # no last use recorded

    assert purge()["login_sessions"] == 1

    assert _ids(LoginSession) == {idle_lately, in_use, from_before}
    assert idle_long_ago not in _ids(LoginSession)


def test_stale_failed_login_counters_go_and_recent_ones_stay(app, world):
    cutoff = world["cutoff"]
    stale = _failure(cutoff - timedelta(minutes=1))
    recent = _failure(cutoff + timedelta(minutes=1))

    assert purge()["login_failures"] == 1

    assert _ids(LoginFailure) == {recent}
    assert stale not in _ids(LoginFailure)


def test_used_and_expired_emailed_links_go_with_what_they_carry_and_live_ones_stay(app, world):
    cutoff = world["cutoff"]
    long_ago, lately = cutoff - timedelta(minutes=1), cutoff + timedelta(minutes=1)
    expired_long_ago = _link(expires_at=long_ago)
    used_long_ago = _link(expires_at=utcnow() + timedelta(hours=1), used_at=long_ago)
    expired_lately = _link(expires_at=lately)
    used_lately = _link(expires_at=utcnow() + timedelta(hours=1), used_at=lately)
    live = _link(expires_at=utcnow() + timedelta(hours=1))

    assert purge()["email_tokens"] == 2

    assert _ids(EmailToken) == {expired_lately, used_lately, live}
    assert not {expired_long_ago, used_long_ago} & _ids(EmailToken)


def test_unfinished_two_step_set_ups_go_once_they_cannot_be_finished_and_the_rest_stay(app, world):
    cutoff = world["cutoff"]
    abandoned = _set_up(created_at=cutoff - ENROLMENT_TTL - timedelta(minutes=1))
    expired_lately = _set_up(created_at=cutoff - ENROLMENT_TTL + timedelta(minutes=1))
    in_progress = _set_up(created_at=utcnow())
    turned_on_long_ago = _set_up(
        created_at=cutoff - timedelta(days=30), enabled_at=cutoff - timedelta(days=30)
    )

    assert purge()["two_step_secrets"] == 1

    assert _ids(TwoStepSecret) == {expired_lately, in_progress, turned_on_long_ago}
    assert abandoned not in _ids(TwoStepSecret)


def test_a_short_retention_never_lifts_a_throttle_early(app, app_ctx, monkeypatch):
    """Counters are read for throttle.FORGET_AFTER seconds, whatever IDP_PURGE_AFTER says."""
    monkeypatch.setitem(app.config, "IDP_PURGE_AFTER", 60)
    for _ in range(12):
        for _, key in throttle._keys("ann@example.com", "192.0.2.1"):
            throttle._count_in_database(key)
    db.session.execute(
        sa.update(LoginFailure).values(last_failed_at=utcnow() - timedelta(minutes=2))
    )
    db.session.commit()
    assert throttle.admit("ann@example.com", "192.0.2.1") > 0

    assert purge()["login_failures"] == 0

    assert throttle.admit("ann@example.com", "192.0.2.1") > 0
    later = utcnow() + timedelta(seconds=throttle.FORGET_AFTER)
    assert purge(now=later)["login_failures"] == 3


def test_a_used_code_is_kept_while_its_login_can_live_so_its_replay_still_revokes(app, world):
    flow = world["flow"]
    code = flow.code_for(world["user"].email)
    tokens = flow.exchange(code).get_json()
    past_retention = utcnow() + timedelta(
        seconds=app.config["IDP_PURGE_AFTER"] + app.config["IDP_AUTH_CODE_TTL"] + 60
    )

    assert purge(now=past_retention) == dict.fromkeys(TABLES, 0)

    replay = flow.exchange(code)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert refresh(flow.http, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_once_the_login_it_opened_can_no_longer_live_the_code_goes(app, world):
    flow = world["flow"]
    code = flow.code_for(world["user"].email)
    tokens = flow.exchange(code).get_json()
    kept = max(app.config["IDP_PURGE_AFTER"], app.config["IDP_REFRESH_TOKEN_TTL"])
    later = utcnow() + timedelta(seconds=kept + app.config["IDP_AUTH_CODE_TTL"] + 60)

    counts = purge(now=later)

    # By then the browser's login is past its maximum age and retention too.
    assert counts == {
        **dict.fromkeys(TABLES, 0),
        "oauth_authorization_codes": 1,
        "login_sessions": 1,
    }
    # The family has not expired yet today, so it still refreshes; the code is unknown.
    response = refresh(flow.http, tokens["refresh_token"])
    assert response.status_code == 200, response.get_data(as_text=True)
    replay = flow.exchange(code)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"


def test_the_tokens_of_a_purged_family_are_inactive_not_an_error(app, world):
    flow = world["flow"]
    platform, secret = make_platform_client(make_org("support", "Support"))
    tokens = tokens_for(flow, world["user"].email)
    flow.http.post("/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": CLIENT})
    after_retention = utcnow() + timedelta(seconds=app.config["IDP_PURGE_AFTER"] + 60)

    assert purge(now=after_retention)["token_families"] == 1

    access, refresh_token = tokens["access_token"], tokens["refresh_token"]
    for token in (access, refresh_token):
        response = introspect(flow.http, token, platform.client_id, secret)
        assert (response.status_code, response.get_json()) == (200, {"active": False})
    bearer = {"Authorization": f"Bearer {access}"}
    assert flow.http.get("/oauth/userinfo", headers=bearer).status_code == 401
    assert refresh(flow.http, refresh_token).get_json()["error"] == "invalid_grant"
    revoked = flow.http.post("/oauth/revoke", data={"token": access, "client_id": CLIENT})
    assert revoked.status_code == 200


def test_a_dry_run_deletes_nothing_and_counts_what_a_purge_deletes(app, world):
    _one_of_each_to_purge(world)
    _code(world["user"], expires_at=utcnow())  # within retention
    before = _rows()

    dry = purge(dry_run=True)

    assert _rows() == before
    assert dry == {**dict.fromkeys(TABLES, 1), "oauth_refresh_tokens": 2}
    assert purge() == dry
    assert _rows() == {**dict.fromkeys(TABLES, 0), "oauth_authorization_codes": 1}


def test_the_command_prints_the_counts_and_deletes_only_without_dry_run(app, world):
    _one_of_each_to_purge(world)
    runner = app.test_cli_runner()

    dry = runner.invoke(purge_command, ["--dry-run"])

    assert dry.exit_code == 0, dry.output
    assert "would delete 1 token_families" in dry.output
    assert "would delete 2 oauth_refresh_tokens" in dry.output
    assert _rows()["token_families"] == 1
    done = runner.invoke(purge_command, ["--batch", "1"])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        "deleted 1 oauth_authorization_codes",
        "deleted 2 oauth_refresh_tokens",
        "deleted 1 token_families",
        "deleted 1 login_sessions",
        "deleted 1 login_failures",
        "deleted 1 email_tokens",
        "deleted 1 two_step_secrets",
    ]
    assert _rows() == dict.fromkeys(TABLES, 0)


def test_purge_help_names_everything_it_deletes(app):
    shown = app.test_cli_runner().invoke(purge_command, ["--help"])

    text = " ".join(shown.output.split())
    for rows in ("codes", "token families", "login sessions", "failed-login counters"):
        assert rows in text
    assert "emailed links" in text
    assert "unfinished two-step set-ups" in text


def test_batches_smaller_than_the_backlog_still_delete_everything(app, world):
    user, long_ago = world["user"], world["cutoff"] - timedelta(minutes=1)
    for _ in range(5):
        _code(user, expires_at=world["code_cutoff"] - timedelta(minutes=1))
        _family(user, expires_at=long_ago, tokens=3)
        _session(user, created_at=long_ago, ended_at=long_ago)
        _failure(long_ago)
        _link(expires_at=long_ago)
        _set_up(created_at=long_ago - ENROLMENT_TTL)

    counts = purge(batch=2)

    assert counts == {**dict.fromkeys(TABLES, 5), "oauth_refresh_tokens": 15}
    assert _rows() == dict.fromkeys(TABLES, 0)


def test_users_clients_audit_events_and_outbox_messages_are_never_purged(app, world):
    user = world["user"]
    record_event("login.failed", actor_type="user", actor_id=user.id, reason="test")
    enqueue_email("ann@example.com", "Hello", "body")
    db.session.commit()
    far_future = utcnow() + timedelta(days=3650)

    purge(now=far_future)

    db.session.expire_all()
    assert db.session.get(User, user.id) is not None
    assert db.session.get(OAuthClient, CLIENT) is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1


def test_the_worker_purges_at_start_then_once_an_hour(app, world):
    user, long_ago = world["user"], world["code_cutoff"] - timedelta(minutes=1)
    _code(user, expires_at=long_ago)

    due = worker.purge_when_due(due=100.0, now=100.0)

    assert due == 100.0 + worker.PURGE_EVERY
    assert _ids(AuthorizationCode) == set()
    _code(user, expires_at=long_ago)
    assert worker.purge_when_due(due, now=due - 1) == due
    assert len(_ids(AuthorizationCode)) == 1
    assert worker.purge_when_due(due, now=due) == due + worker.PURGE_EVERY
    assert _ids(AuthorizationCode) == set()


def test_the_worker_works_off_a_backlog_in_bounded_passes_a_few_seconds_apart(
    app, world, monkeypatch
):
    monkeypatch.setattr(worker, "PURGE_BATCH", 2)
    monkeypatch.setattr(worker, "PURGE_BATCHES_PER_PASS", 2)
    for _ in range(5):
        _code(world["user"], expires_at=world["code_cutoff"] - timedelta(minutes=1))

    due = worker.purge_when_due(due=100.0, now=100.0)

    assert due == 100.0 + worker.PURGE_BACKLOG_EVERY
    assert len(_ids(AuthorizationCode)) == 1
    assert worker.purge_when_due(due, now=due) == due + worker.PURGE_EVERY
    assert _ids(AuthorizationCode) == set()


def test_a_failing_purge_is_logged_and_messages_still_go_out(app, monkeypatch, caplog):
    stop = threading.Event()
    delivered = []

    def fail(**_):
        raise sa.exc.OperationalError("DELETE", {}, Exception("disk full"))

    def send(message):
        delivered.append(message.id)
        stop.set()

    monkeypatch.setattr(worker, "purge", fail)
    monkeypatch.setitem(worker.DELIVERERS, "email", send)
    with app.app_context():
        message_id = enqueue_email("ann@example.com", "Hello", "body").id
        db.session.commit()

    def loop():
        with app.app_context():
            worker.run_forever(interval=0.01, stop=stop)
            db.session.remove()

    with caplog.at_level(logging.ERROR, logger="idp.outbox"):
        runner = threading.Thread(target=loop)
        runner.start()
        runner.join(timeout=10)
    assert not runner.is_alive()
    assert delivered == [message_id]
    assert "purge failed" in caplog.text and "disk full" in caplog.text


@pytest.mark.postgres
def test_two_purges_at_once_delete_each_row_once(app, world):
    user, long_ago = world["user"], world["cutoff"] - timedelta(minutes=1)
    for _ in range(20):
        _family(user, expires_at=long_ago, tokens=2)
    barrier = threading.Barrier(2)

    def run() -> dict[str, int]:
        with app.app_context():
            barrier.wait()
            try:
                return purge(batch=3)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(2) as pool:
        results = [future.result() for future in [pool.submit(run) for _ in range(2)]]

    assert sum(r["token_families"] for r in results) == 20
    assert sum(r["oauth_refresh_tokens"] for r in results) == 40
    assert _rows()["token_families"] == 0

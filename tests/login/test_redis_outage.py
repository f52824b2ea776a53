"""A Redis outage fails no login: counters move to the database or the process, then back.

Each instance here reaches the real Redis through a forwarder the test cuts
and mends, as a network fault or a Redis restart would.
"""

from __future__ import annotations

import logging
import secrets

import pytest
import redis

from idp import extensions
from idp.extensions import db
from idp.login import throttle
from idp.login.models import LoginFailure
from tests.conftest import REDIS_URL
from tests.factories import PASSWORD, make_org, make_user
from tests.instances import dispose, make_instance, redis_partition

pytestmark = pytest.mark.redis

ADDRESS = "198.51.100.20"


@pytest.fixture
def partition():
    with redis_partition() as link:
        yield link


class Clock:
    """The outage bookkeeping's clock, moved by the test instead of waited for."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def pass_redial_interval(self) -> None:
        self.now += extensions.REDIS_REDIAL_AFTER + 0.1


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> Clock:
    """A fresh outage record and a clock that stands still unless moved."""
    fake = Clock()
    monkeypatch.setattr(extensions, "_clock", fake)
    monkeypatch.setattr(extensions, "_redis_down_until", {})
    return fake


@pytest.fixture
def prefix() -> str:
    return f"outage-{secrets.token_hex(3)}:"


@pytest.fixture
def instances():
    """Instances a test starts, closed after it."""
    started: list = []
    yield started
    dispose(*started)


def _start(instances, database_url, prefix, redis_url, **overrides):
    instance = make_instance(database_url, prefix, redis_url, WTF_CSRF_ENABLED=False, **overrides)
    instances.append(instance)
    return instance


def _login(client, email: str, password: str = "wrong-password") -> int:
    response = client.post(
        "/login?hub=partner",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ADDRESS},
    )
    return response.status_code


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Redis failed")]


def _users(count: int) -> list:
    org = make_org("partner")
    users = [make_user("partner", org) for _ in range(count)]
    db.session.commit()
    return users


def _failures_in_database() -> int:
    db.session.rollback()
    return db.session.scalar(db.select(db.func.count()).select_from(LoginFailure))


def _redis_keys(pattern: str) -> list:
    return redis.Redis.from_url(REDIS_URL).keys(pattern)


def _forget_redis_keys(prefix: str) -> None:
    shared = redis.Redis.from_url(REDIS_URL)
    if keys := shared.keys(prefix + "*"):
        shared.delete(*keys)


def test_while_redis_is_down_logins_work_and_failures_still_slow_down(
    app_ctx, database_url, prefix, partition, instances, clock, caplog
):
    attacked, bystander, later = _users(3)
    client = _start(instances, database_url, prefix, partition.url()).test_client()
    caplog.set_level(logging.WARNING, logger="idp.extensions")
    partition.cut()

    failures = throttle.PAIR.free
    assert [_login(client, attacked.email) for _ in range(failures)] == [401] * failures
    # The failures were counted in the database, so even the right password must wait.
    assert _failures_in_database() > 0
    assert _login(client, attacked.email, PASSWORD) == 429
    assert _login(client, bystander.email, PASSWORD) == 302
    # One request found Redis down; the others counted in the database without trying it.
    assert len(_warnings(caplog)) == 1

    clock.pass_redial_interval()
    assert _login(client, later.email) == 401  # Redis tried again, still down
    assert len(_warnings(caplog)) == 2

    partition.mend()
    clock.pass_redial_interval()
    counted_before = _failures_in_database()
    assert _login(client, later.email) == 401
    # Counting is back in Redis, shared by every instance.
    assert _failures_in_database() == counted_before
    assert _redis_keys(prefix + "login-fail:*")
    _forget_redis_keys(prefix)


def test_redis_lost_in_the_middle_of_a_login_fails_no_login(
    app_ctx, database_url, prefix, partition, instances, clock, monkeypatch
):
    [user] = _users(1)
    client = _start(instances, database_url, prefix, partition.url()).test_client()
    assert _login(client, user.email) == 401  # a failure on record in Redis
    admit = throttle.admit

    def admit_then_lose_redis(*args):
        # Redis admits the attempt (counting it on the pair and the account), then goes away.
        wait = admit(*args)
        partition.cut()
        return wait

    monkeypatch.setattr(throttle, "admit", admit_then_lose_redis)
    # The wrong password is then counted in the database: the address's counter.
    assert _login(client, user.email) == 401
    assert _failures_in_database() == 1

    partition.mend()
    clock.pass_redial_interval()
    # Redis counts the attempt, then fails to take it back: the login still succeeds,
    # and the account's counters are forgotten in the database instead.
    assert _login(client, user.email, PASSWORD) == 302
    assert _failures_in_database() == 1  # the address counter is never forgotten on success
    _forget_redis_keys(prefix)


def test_while_redis_is_down_rate_limits_count_in_the_process_then_in_redis_again(
    app_ctx, database_url, prefix, partition, instances, clock
):
    limited = {"IDP_RATELIMIT_ENABLED": True, "IDP_LOGIN_RATE_LIMIT": "2/minute"}
    client = _start(instances, database_url, prefix, partition.url(), **limited).test_client()
    partition.cut()
    # Unknown addresses, so that only the rate limit speaks.
    emails = [f"nobody{i}@outage.example" for i in range(6)]
    assert [_login(client, email) for email in emails[:3]] == [401, 401, 429]

    partition.mend()
    clock.pass_redial_interval()
    assert [_login(client, email) for email in emails[3:6]] == [401, 401, 429]
    # Those were counted in Redis: another instance sees the window full.
    other = _start(instances, database_url, prefix, REDIS_URL, **limited).test_client()
    assert _login(other, "someone@outage.example") == 429
    _forget_redis_keys(prefix)


def test_after_the_interval_one_request_tries_redis_while_the_others_count_elsewhere(
    app_ctx, database_url, prefix, partition, instances, clock
):
    instance = _start(instances, database_url, prefix, partition.url())
    with instance.app_context():
        extensions.redis_failed(ConnectionError("down"))
        assert extensions.reachable_redis() is None
        clock.pass_redial_interval()
        assert extensions.reachable_redis() is not None  # this one tries
        assert extensions.reachable_redis() is None  # the others wait for its answer
        extensions.redis_answered()
        assert extensions.reachable_redis() is not None
        assert extensions.reachable_redis() is not None


def test_the_outage_is_logged_by_error_class_only(
    app_ctx, database_url, prefix, partition, instances, caplog
):
    secret_url = f"redis://:hunter2-secret@127.0.0.1:{partition.port}/0"
    instance = _start(instances, database_url, prefix, secret_url, IDP_RATELIMIT_ENABLED=True)
    caplog.set_level(logging.DEBUG)
    partition.cut()
    assert _login(instance.test_client(), "nobody@outage.example") == 401
    # Not the URL, nor redis-py's message (which names the host and port).
    [warning] = _warnings(caplog)
    assert warning.startswith("Redis failed (ConnectionError); ")
    assert "hunter2" not in caplog.text
    assert str(partition.port) not in warning

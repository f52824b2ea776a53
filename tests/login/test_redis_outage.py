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
    return instance.test_client()


def _login(client, email: str, password: str = "wrong-password") -> int:
    response = client.post(
        "/login?hub=partner",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ADDRESS},
    )
    return response.status_code


def _redis_is_back() -> None:
    """The redial interval has passed: the next request tries Redis again."""
    extensions._redis_down_until.clear()


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


def test_while_redis_is_down_logins_work_and_failures_still_slow_down(
    app_ctx, database_url, prefix, partition, instances, caplog
):
    attacked, bystander, later = _users(3)
    client = _start(instances, database_url, prefix, partition.url())
    caplog.set_level(logging.WARNING, logger="idp.extensions")
    partition.cut()

    assert [_login(client, attacked.email) for _ in range(throttle.PAIR.free)] == [401] * 3
    # The failures were counted in the database, so the right password must wait.
    assert _failures_in_database() > 0
    assert _login(client, attacked.email, PASSWORD) == 429
    assert _login(client, bystander.email, PASSWORD) == 302
    # One request found Redis down; the others did not wait for it.
    assert len(_warnings(caplog)) == 1

    partition.mend()
    _redis_is_back()
    counted_before = _failures_in_database()
    assert _login(client, later.email) == 401
    # Counting is back in Redis, shared by every instance.
    assert _failures_in_database() == counted_before
    shared = redis.Redis.from_url(REDIS_URL)
    assert shared.keys(prefix + "login-fail:*")
    shared.delete(*shared.keys(prefix + "login-fail:*"))


def test_while_redis_is_down_rate_limits_count_in_the_process_then_in_redis_again(
    app_ctx, database_url, prefix, partition, instances
):
    limited = {"IDP_RATELIMIT_ENABLED": True, "IDP_LOGIN_RATE_LIMIT": "2/minute"}
    client = _start(instances, database_url, prefix, partition.url(), **limited)
    partition.cut()
    # Unknown addresses, so that only the rate limit speaks.
    emails = [f"nobody{i}@outage.example" for i in range(6)]
    assert [_login(client, email) for email in emails[:3]] == [401, 401, 429]

    partition.mend()
    _redis_is_back()
    assert [_login(client, email) for email in emails[3:6]] == [401, 401, 429]
    # Those were counted in Redis: another instance sees the window full.
    other = _start(instances, database_url, prefix, REDIS_URL, **limited)
    assert _login(other, "someone@outage.example") == 429
    shared = redis.Redis.from_url(REDIS_URL)
    shared.delete(*shared.keys(prefix + "*"))


def test_the_outage_is_logged_without_the_redis_password(
    app_ctx, database_url, prefix, partition, instances, caplog
):
    secret_url = f"redis://:hunter2-secret@127.0.0.1:{partition.port}/0"
    client = _start(instances, database_url, prefix, secret_url, IDP_RATELIMIT_ENABLED=True)
    caplog.set_level(logging.DEBUG)
    partition.cut()
    assert _login(client, "nobody@outage.example") == 401
    assert _warnings(caplog)
    assert "hunter2" not in caplog.text

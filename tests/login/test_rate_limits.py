"""Login and token endpoints are rate-limited, in memory or in Redis.

Each case runs a fresh app with limits on in a child process, as another
instance would: the in-process counters start empty, Redis's are shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from idp import create_app
    from tests.conftest import app_config

    database_url, redis_url, prefix, overrides, plan = sys.argv[1:6]
    app = create_app(app_config(
        database_url, prefix,
        IDP_RATELIMIT_ENABLED=True, WTF_CSRF_ENABLED=False, IDP_REDIS_URL=redis_url or None,
        **json.loads(overrides),
    ))
    client = app.test_client()
    answers = []
    for step in json.loads(plan):
        response = client.post(
            step["path"], data=step["data"], headers=step.get("headers", {}),
            base_url=step.get("base_url", "http://localhost"),
            environ_base={"REMOTE_ADDR": step.get("remote_addr", "198.51.100.9")},
        )
        body = response.get_json(silent=True)
        answers.append([
            response.status_code,
            body.get("error") if body else None,
            response.headers.get("Retry-After"),
            any(name.startswith("X-RateLimit") for name in response.headers.keys()),
        ])
    print(json.dumps(answers))
    """
)
ADDRESS = "198.51.100.9"
PROXY = "10.0.0.2"


def _run(database_url: str, redis_url: str | None, prefix: str, plan: list, **overrides) -> list:
    """Send ``plan``'s POSTs to a fresh app with limits on.

    For each: ``[status, error, Retry-After, whether X-RateLimit-* headers came]``.
    """
    env = {**os.environ, "IDP_INSTANCE_PATH": os.environ.get("IDP_INSTANCE_PATH", "")}
    argv = [database_url, redis_url or "", prefix, json.dumps(overrides), json.dumps(plan)]
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", SCRIPT, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _logins(count: int, **step) -> list:
    # A different email each time, so the failed-login slowdown stays out of the way.
    return [
        {
            "path": "/login?hub=partner",
            "data": {"email": f"x{i}@y.example", "password": "p"},
            **step,
        }
        for i in range(count)
    ]


def _tokens(count: int, **step) -> list:
    return [{"path": "/oauth/token", "data": {"grant_type": "bogus"}, **step}] * count


def _default_plan() -> list:
    return _logins(12) + _tokens(62)


def _statuses(answers: list) -> list[int]:
    return [answer[0] for answer in answers]


def _errors(answers: list) -> list:
    return [answer[:2] for answer in answers]


def _assert_limited(answers: list) -> None:
    login, token = _statuses(answers[:12]), _statuses(answers[12:])
    assert login[:10] == [401] * 10
    assert login[10:] == [429, 429]
    assert 429 not in token[:60]
    assert token[60:] == [429, 429]


def test_login_and_token_endpoints_are_rate_limited(app, database_url, redis_prefix):
    _assert_limited(_run(database_url, None, redis_prefix + "mem-", _default_plan()))


@pytest.mark.redis
def test_the_limits_hold_across_instances_through_redis(app, database_url, redis_prefix):
    from tests.conftest import REDIS_URL

    prefix = redis_prefix + "shared-"
    first = _run(database_url, REDIS_URL, prefix, _default_plan())
    _assert_limited(first)
    # A second process (another instance) sees the same counters.
    second = _run(database_url, REDIS_URL, prefix, _logins(1) + _tokens(1))
    assert _statuses(second) == [429, 429]


def test_the_limits_are_the_configured_ones_and_a_refusal_says_when_to_retry(
    app, database_url, redis_prefix
):
    answers = _run(
        database_url,
        None,
        redis_prefix + "configured-",
        _logins(4) + _tokens(6),
        IDP_LOGIN_RATE_LIMIT="3/minute;100/hour",
        IDP_TOKEN_RATE_LIMIT="5/hour",
    )
    assert _statuses(answers) == [401, 401, 401, 429] + [400] * 5 + [429]
    # Retry-After is when the full window resets; no X-RateLimit-* headers on any answer.
    login_refused, token_refused = answers[3], answers[9]
    assert 0 < int(login_refused[2]) <= 60
    assert 60 < int(token_refused[2]) <= 3600
    assert [answer[2] for answer in answers[:3]] == [None] * 3
    assert not any(answer[3] for answer in answers)


@pytest.mark.parametrize("shared", [False, pytest.param(True, marks=pytest.mark.redis)])
def test_people_who_sign_in_use_up_none_of_their_address_s_attempts(
    app_ctx, database_url, redis_prefix, shared
):
    from idp.extensions import db
    from tests.conftest import REDIS_URL
    from tests.factories import PASSWORD, make_user

    # One office behind one address: five colleagues sign in, then someone guesses.
    colleagues = [make_user("partner").email for _ in range(5)]
    db.session.commit()
    plan = [
        {"path": "/login?hub=partner", "data": {"email": email, "password": PASSWORD}}
        for email in colleagues
    ] + _logins(3)
    answers = _run(
        database_url,
        REDIS_URL if shared else None,
        redis_prefix + f"office-{shared}-",
        plan,
        IDP_LOGIN_RATE_LIMIT="2/minute;100/hour",
    )
    assert _statuses(answers) == [302] * 5 + [401, 401, 429]


def _failed_login_addresses() -> list[str]:
    from idp.audit.models import AuditEvent
    from idp.extensions import db

    query = db.select(AuditEvent.ip).where(AuditEvent.action == "login.failed")
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def test_behind_a_trusted_proxy_each_client_address_has_its_own_limit(
    app_ctx, database_url, redis_prefix
):
    def through_proxy(forwarded_for: str) -> dict:
        return {"remote_addr": PROXY, "headers": {"X-Forwarded-For": forwarded_for}}

    plan = (
        _logins(3, **through_proxy("203.0.113.1"))
        + _logins(1, **through_proxy("203.0.113.2"))
        # What a client writes left of the address the proxy saw is not believed.
        + _logins(1, **through_proxy("203.0.113.7, 203.0.113.1"))
    )
    answers = _run(
        database_url,
        None,
        redis_prefix + "proxied-",
        plan,
        IDP_PROXY_HOPS=1,
        IDP_LOGIN_RATE_LIMIT="2/minute",
    )
    assert _statuses(answers) == [401, 401, 429, 401, 429]
    # The audit log names the people, not the proxy.
    assert _failed_login_addresses() == ["203.0.113.1", "203.0.113.1", "203.0.113.2"]


def test_without_trusted_proxies_a_forwarded_address_is_ignored(
    app_ctx, database_url, redis_prefix
):
    plan = [
        {**step, "headers": {"X-Forwarded-For": f"203.0.113.{i}"}}
        for i, step in enumerate(_logins(3))
    ]
    answers = _run(
        database_url, None, redis_prefix + "direct-", plan, IDP_LOGIN_RATE_LIMIT="2/minute"
    )
    assert _statuses(answers) == [401, 401, 429]
    assert _failed_login_addresses() == [ADDRESS, ADDRESS]


def test_https_ended_at_a_trusted_proxy_is_https_to_the_token_endpoint(
    app, database_url, redis_prefix
):
    public = {"base_url": "http://idp.example", "remote_addr": PROXY}
    told_https = {**public, "headers": {"X-Forwarded-Proto": "https"}}
    plan = _tokens(1, **public) + _tokens(1, **told_https)
    proxied = _run(database_url, None, redis_prefix + "proto-", plan, IDP_PROXY_HOPS=1)
    direct = _run(database_url, None, redis_prefix + "proto-direct-", plan)
    assert _errors(proxied) == [[400, "insecure_transport"], [400, "unsupported_grant_type"]]
    assert _errors(direct) == [[400, "insecure_transport"], [400, "insecure_transport"]]


def test_behind_two_proxies_the_client_is_two_hops_in_and_the_nearest_says_the_scheme(
    app_ctx, database_url, redis_prefix
):
    # The client forged the first address; the outer proxy saw 203.0.113.1, the inner one
    # saw the outer proxy (10.0.0.1) and passed on the scheme the outer one was reached by.
    forwarded = {"X-Forwarded-For": "203.0.113.7, 203.0.113.1, 10.0.0.1"}
    plan = _logins(1, remote_addr=PROXY, headers=forwarded) + _tokens(
        1,
        remote_addr=PROXY,
        base_url="http://idp.example",
        headers={**forwarded, "X-Forwarded-Proto": "https"},
    )
    answers = _run(database_url, None, redis_prefix + "two-hops-", plan, IDP_PROXY_HOPS=2)
    assert _errors(answers)[1] == [400, "unsupported_grant_type"]
    assert _failed_login_addresses() == ["203.0.113.1"]


def _counters(shared: bool, redis_prefix: str):
    """Counters of their own: a prefix no other test (nor parametrization) counts under."""
    import secrets
    from types import SimpleNamespace

    from idp.ratelimits import _Counters
    from tests.conftest import REDIS_URL

    prefix = f"{redis_prefix}{secrets.token_hex(4)}:"
    config = {
        "IDP_REDIS_URL": REDIS_URL if shared else None,
        "IDP_REDIS_PREFIX": prefix,
        "SECRET_KEY": "test-secret",
    }
    return _Counters(SimpleNamespace(config=config))


@pytest.mark.parametrize("shared", [False, pytest.param(True, marks=pytest.mark.redis)])
@pytest.mark.parametrize("failure_meanwhile", [False, True])
def test_a_hit_given_back_after_its_window_ended_is_no_credit_for_the_next(
    app_ctx, redis_prefix, shared, failure_meanwhile
):
    from werkzeug.exceptions import TooManyRequests

    from idp.ratelimits import parsed

    counters, limits = _counters(shared, redis_prefix), parsed("2/second")
    sign_in = counters.hit(limits, "login", ADDRESS)
    # Its window ends while the password is checked; maybe a failure from the same
    # address starts the next window before the sign-in is given back.
    time.sleep(1.05)
    if failure_meanwhile:
        counters.hit(limits, "login", ADDRESS)
    counters.give_back(sign_in)  # it let its person in
    for _ in range(1 if failure_meanwhile else 2):
        counters.hit(limits, "login", ADDRESS)
    with pytest.raises(TooManyRequests):
        counters.hit(limits, "login", ADDRESS)


@pytest.mark.parametrize("shared", [False, pytest.param(True, marks=pytest.mark.redis)])
def test_every_window_counts_and_refuses_with_the_time_left_of_the_full_one(
    app_ctx, redis_prefix, shared
):
    from werkzeug.exceptions import TooManyRequests

    from idp.ratelimits import parsed

    counters, limits = _counters(shared, redis_prefix), parsed("3/second;2/hour")
    counters.give_back(counters.hit(limits, "token", ADDRESS))  # given back in both windows
    counters.hit(limits, "token", ADDRESS)
    counters.hit(limits, "token", ADDRESS)
    with pytest.raises(TooManyRequests) as refused:
        counters.hit(limits, "token", ADDRESS)  # the second's window has room; the hour's not
    assert 3590 < refused.value.retry_after <= 3600
    # Another address has windows of its own.
    counters.hit(limits, "token", "203.0.113.5")


def _age(counted, window: int, seconds_left: int) -> None:
    """As if ``counted``'s window number ``window`` had only ``seconds_left`` to run."""
    from idp.ratelimits import _InRedis

    store, key = counted.store, counted.keys[window]
    if isinstance(store, _InRedis):
        store.redis.pexpire(store.prefix + key, seconds_left * 1000)
    else:
        store.storage.expirations[key] = time.time() + seconds_left


@pytest.mark.parametrize("shared", [False, pytest.param(True, marks=pytest.mark.redis)])
def test_a_refusal_says_what_is_left_of_the_full_window_and_counts_no_further(
    app_ctx, redis_prefix, shared
):
    from werkzeug.exceptions import TooManyRequests

    from idp.ratelimits import parsed

    counters, limits = _counters(shared, redis_prefix), parsed("1/hour;2/day")
    first = counters.hit(limits, "token", ADDRESS)
    _age(first, 0, 30)  # the hour began 59.5 minutes ago
    for _ in range(2):  # a refusal neither moves the hour's end nor reaches the day
        with pytest.raises(TooManyRequests) as refused:
            counters.hit(limits, "token", ADDRESS)
        assert 1 <= refused.value.retry_after <= 31
    _age(first, 0, 0)  # the hour is up
    # The day has counted the one request the hour let through, not the refused ones.
    counters.hit(limits, "token", ADDRESS)


@pytest.mark.redis
def test_a_sign_in_waits_on_no_redis_known_to_be_down_to_give_its_hit_back(
    app_ctx, redis_prefix, monkeypatch
):
    from idp import extensions
    from idp.ratelimits import parsed
    from tests.conftest import REDIS_URL

    monkeypatch.setattr(extensions, "_redis_down_until", {})
    counters, limits = _counters(True, redis_prefix), parsed("2/minute")
    sign_in = counters.hit(limits, "login", ADDRESS)  # counted in Redis
    extensions.redis_failed(ConnectionError("down"), REDIS_URL)  # meanwhile, Redis failed
    asked = []
    monkeypatch.setattr(sign_in.store, "give_back", lambda *args: asked.append(args))
    counters.give_back(sign_in)
    assert asked == []  # not dialled: it stays counted

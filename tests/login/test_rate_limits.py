"""Login and token endpoints are rate-limited (Flask-Limiter), in memory or in Redis.

The limiter is a process-wide extension, so these run the app in a child
process with limits on and leave the suite's own app untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from idp import create_app
    from tests.conftest import app_config

    database_url, redis_url, prefix = sys.argv[1], sys.argv[2] or None, sys.argv[3]
    app = create_app(app_config(
        database_url, prefix,
        IDP_RATELIMIT_ENABLED=True, RATELIMIT_ENABLED=True, WTF_CSRF_ENABLED=False,
        IDP_REDIS_URL=redis_url,
        RATELIMIT_STORAGE_URI=redis_url or "memory://",
    ))
    client = app.test_client()
    # A different email each time, so the failed-login slowdown stays out of the way.
    login = [client.post("/login?hub=partner", data={"email": f"x{i}@y.example", "password": "p"},
                         environ_base={"REMOTE_ADDR": "198.51.100.9"}).status_code
             for i in range(12)]
    token = [client.post("/oauth/token", data={"grant_type": "bogus"},
                         environ_base={"REMOTE_ADDR": "198.51.100.9"}).status_code
             for _ in range(62)]
    print(json.dumps({"login": login, "token": token}))
    """
)


def _run(database_url: str, redis_url: str | None, prefix: str) -> dict:
    env = {**os.environ, "IDP_INSTANCE_PATH": os.environ.get("IDP_INSTANCE_PATH", "")}
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", SCRIPT, database_url, redis_url or "", prefix],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _assert_limited(statuses: dict) -> None:
    assert statuses["login"][:10] == [401] * 10
    assert statuses["login"][10:] == [429, 429]
    assert 429 not in statuses["token"][:60]
    assert statuses["token"][60:] == [429, 429]


def test_login_and_token_endpoints_are_rate_limited(app, database_url, redis_prefix):
    _assert_limited(_run(database_url, None, redis_prefix + "mem-"))


@pytest.mark.redis
def test_the_limits_hold_across_instances_through_redis(app, database_url, redis_prefix):
    from tests.conftest import REDIS_URL

    prefix = redis_prefix + "shared-"
    first = _run(database_url, REDIS_URL, prefix)
    _assert_limited(first)
    # A second process (another instance) sees the same counters.
    second = _run(database_url, REDIS_URL, prefix)
    assert second["login"][0] == 429
    assert second["token"][0] == 429

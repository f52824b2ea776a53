"""Failed logins slow down per account and per address, and never lock a user out for good."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from idp.extensions import db
from idp.login import throttle
from idp.login.models import LoginFailure
from tests.factories import PASSWORD, make_org, make_user
from tests.oauth.conftest import csrf_from


def _attempt(browser, email: str, password: str, address: str = "10.0.0.1"):
    page = browser.get("/login?hub=partner", environ_base={"REMOTE_ADDR": address})
    return browser.post(
        "/login?hub=partner",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
        environ_base={"REMOTE_ADDR": address},
    )


@pytest.fixture
def user(app_ctx):
    user = make_user("partner", make_org("partner"))
    db.session.commit()
    return user


def _fail(browser, user, times: int, address: str = "10.0.0.1") -> None:
    for _ in range(times):
        assert _attempt(browser, user.email, "wrong-password", address).status_code == 401


def test_after_a_few_failures_the_account_must_wait(app, browser, user):
    _fail(browser, user, throttle.PAIR.free)
    response = _attempt(browser, user.email, PASSWORD)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "Too many failed attempts" in response.text


def test_the_wait_is_over_once_the_delay_has_passed(app, browser, user):
    from datetime import timedelta

    _fail(browser, user, throttle.PAIR.free)
    for row in db.session.scalars(db.select(LoginFailure)):
        row.last_failed_at -= timedelta(seconds=throttle.PAIR.max_delay + 1)
    db.session.commit()
    assert _attempt(browser, user.email, PASSWORD).status_code == 302


def test_an_attacker_elsewhere_delays_the_real_user_only_briefly(app, browser, user):
    # Many failures from many addresses: the account-wide delay stays small.
    for index in range(throttle.ACCOUNT.free + 5):
        _attempt(browser, user.email, "wrong-password", f"10.0.1.{index}")
    wait = throttle.admit(user.email_normalized, "192.0.2.7")
    assert 0 < wait <= throttle.ACCOUNT.max_delay


def test_delays_grow_exponentially_and_are_capped():
    assert [throttle.PAIR.delay(n) for n in range(0, 6)] == [0, 0, 0, 2, 4, 8]
    assert throttle.PAIR.delay(100) == throttle.PAIR.max_delay


@contextmanager
def _counting_in_redis(app, user, address: str):
    """Counters in Redis for the block; the user's counters from ``address`` removed after."""
    from tests.conftest import REDIS_URL

    app.config["IDP_REDIS_URL"] = REDIS_URL
    try:
        yield
    finally:
        client = throttle._redis()
        for _, key in throttle._keys(user.email_normalized, address):
            client.delete(throttle._prefix() + key)
        app.config["IDP_REDIS_URL"] = None


@pytest.mark.redis
def test_counters_are_shared_through_redis(app, browser, user):
    with _counting_in_redis(app, user, "10.0.0.1"):
        _fail(browser, user, throttle.PAIR.free)
        assert db.session.scalar(db.select(db.func.count()).select_from(LoginFailure)) == 0
        assert throttle.admit(user.email_normalized, "10.0.0.1") > 0
        assert _attempt(browser, user.email, PASSWORD).status_code == 429


def test_database_counters_add_up_and_start_over_after_a_quiet_period(app_ctx):
    from datetime import timedelta

    for _ in range(2):
        assert throttle.admit("a@b.example", "10.9.9.9") == 0
        throttle.record_failure("a@b.example", "10.9.9.9")
    db.session.commit()
    assert {row.failures for row in db.session.scalars(db.select(LoginFailure))} == {2}
    for row in db.session.scalars(db.select(LoginFailure)):
        row.last_failed_at -= timedelta(seconds=throttle.FORGET_AFTER + 1)
    db.session.commit()
    assert throttle.admit("a@b.example", "10.9.9.9") == 0
    throttle.record_failure("a@b.example", "10.9.9.9")
    db.session.commit()
    db.session.expire_all()
    assert {row.failures for row in db.session.scalars(db.select(LoginFailure))} == {1}


def _counted(user, address: str = "10.0.0.1") -> list[int]:
    keys = [key for _, key in throttle._keys(user.email_normalized, address)]
    client = throttle._redis()
    if client is not None:
        return [int(client.hget(throttle._prefix() + key, "n") or 0) for key in keys]
    rows = {row.key: row.failures for row in db.session.scalars(db.select(LoginFailure))}
    return [rows.get(key, 0) for key in keys]


def test_a_successful_login_forgets_its_account_and_pair_failures(app, browser, user):
    _fail(browser, user, throttle.PAIR.free - 1)
    assert _counted(user) == [throttle.PAIR.free - 1] * 3  # pair, address, account
    assert _attempt(browser, user.email, PASSWORD).status_code == 302
    db.session.expire_all()
    # The address keeps its count: many accounts tried from one place still add up.
    assert _counted(user) == [0, throttle.PAIR.free - 1, 0]
    # The user has every free attempt again (in a browser not logged in yet).
    again = app.test_client()
    _fail(again, user, throttle.PAIR.free - 1)
    assert _attempt(again, user.email, PASSWORD).status_code == 302


def test_stored_counters_cannot_be_matched_against_a_guessed_email_or_address(app, browser, user):
    import hashlib

    _fail(browser, user, 1, address="198.51.100.23")
    stored = {row.key for row in db.session.scalars(db.select(LoginFailure))}
    assert len(stored) == 3  # pair, address, account
    # A bare hash of a guess (an IPv4 address has only 2**32 values) finds nothing.
    guesses = [
        ("pair", user.email_normalized, "198.51.100.23"),
        ("address", "198.51.100.23"),
        ("account", user.email_normalized),
    ]
    bare = {hashlib.sha256("\x00".join(g).encode()).hexdigest() for g in guesses}
    assert not stored & bare
    assert not [key for key in stored if "198.51.100.23" in key or "@" in key]
    # Keyed from SECRET_KEY: another installation names the same attempt differently.
    secret = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another installation's secret"
    try:
        assert not stored & {
            key for _, key in throttle._keys(user.email_normalized, "198.51.100.23")
        }
    finally:
        app.config["SECRET_KEY"] = secret
    assert stored == {key for _, key in throttle._keys(user.email_normalized, "198.51.100.23")}


def test_attempts_the_throttle_refuses_are_in_the_audit_log(app, browser, user):
    from idp.accounts.emails import email_hmac
    from idp.audit.models import AuditEvent

    _fail(browser, user, throttle.PAIR.free)
    assert _attempt(browser, user.email, PASSWORD).status_code == 429
    assert _attempt(browser, "nobody@example.com", "guess", "10.0.0.1").status_code == 401
    events = db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.action == "login.failed").order_by(AuditEvent.id)
    ).all()
    # Each refused attempt is on record, with whom it was for, though no password was checked.
    assert [(e.target_id, e.reason) for e in events] == [
        *[(user.id, "bad_credentials")] * throttle.PAIR.free,
        (user.id, "throttled"),
        (None, "bad_credentials"),
    ]
    assert events[-2].after == {"email_hmac": email_hmac(user.email_normalized)}
    assert events[-2].ip == "10.0.0.1"


def _guess_at_once(live_server, email: str, attempts: int) -> list[int]:
    """``attempts`` wrong passwords for ``email`` posted at the same moment, from one address."""
    import threading

    import requests

    barrier = threading.Barrier(attempts)
    statuses = [0] * attempts

    def guess(index: int) -> None:
        with requests.Session() as browser:
            url = live_server.url + "/login?hub=partner"
            token = csrf_from(browser.get(url, timeout=30).text)
            barrier.wait(timeout=30)
            statuses[index] = browser.post(
                url,
                data={"csrf_token": token, "email": email, "password": f"guess-{index}"},
                timeout=60,
            ).status_code

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def _guesses_sent_together_cannot_outrun_the_counters(live_server, user):
    statuses = _guess_at_once(live_server, user.email, 12)
    # Each is counted before its password is checked: only the free ones are checked.
    assert sorted(statuses) == [401] * throttle.PAIR.free + [429] * (12 - throttle.PAIR.free)


def test_guesses_sent_together_cannot_outrun_the_counters(app, live_server, user):
    _guesses_sent_together_cannot_outrun_the_counters(live_server, user)


@pytest.mark.redis
def test_guesses_sent_together_cannot_outrun_the_counters_in_redis(app, live_server, user):
    with _counting_in_redis(app, user, "127.0.0.1"):
        _guesses_sent_together_cannot_outrun_the_counters(live_server, user)
        assert db.session.scalar(db.select(db.func.count()).select_from(LoginFailure)) == 0


def test_free_failures_ask_for_no_wait_however_recent(app_ctx):
    """Two sign-ins of one person at once: the other's count may be stamped a moment later."""
    from datetime import timedelta

    from idp.timeutil import utcnow

    for _, key in throttle._keys("both@tabs.example", "10.1.1.1"):
        db.session.add(
            LoginFailure(key=key, failures=1, last_failed_at=utcnow() + timedelta(seconds=5))
        )
    db.session.commit()
    assert throttle.admit("both@tabs.example", "10.1.1.1") == 0

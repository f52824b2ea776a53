"""Settings that cannot work are refused when the service starts, with the setting named."""

from __future__ import annotations

from datetime import timedelta

import pytest

from idp import create_app
from idp.config_checks import LIFETIME_SETTINGS, RATE_LIMIT_SETTINGS, ConfigurationError
from tests.conftest import app_config


@pytest.mark.parametrize("value", ["-1", "1001", "0.5", "soon"])
def test_a_change_lease_out_of_range_refuses_to_start(monkeypatch, database_url, value):
    monkeypatch.setenv("IDP_CHANGE_LEASE_MS", value)
    with pytest.raises(ConfigurationError, match="IDP_CHANGE_LEASE_MS"):
        create_app(app_config(database_url, "settings:"))


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("250", 250), ("", 20)])
def test_the_change_lease_is_read_from_the_environment(monkeypatch, database_url, value, expected):
    monkeypatch.setenv("IDP_CHANGE_LEASE_MS", value)
    app = create_app(app_config(database_url, "settings:"))
    assert app.config["IDP_CHANGE_LEASE_MS"] == expected


REFUSED = (
    [("IDP_PROXY_HOPS", value) for value in ("-1", "6", "two")]
    + [
        (name, value)
        for name in RATE_LIMIT_SETTINGS
        for value in ("soon", "0/minute", "10/minute;none", "5/fortnight")
    ]
    + [(name, "60/minute;600/hour;60/minute") for name in RATE_LIMIT_SETTINGS]
    + [(name, value) for name in LIFETIME_SETTINGS for value in ("0", "-5", "1.5", "a week")]
    + [("IDP_AUTH_CODE_TTL", value) for value in ("0", "601", "1m")]
    + [("IDP_MAX_BODY_BYTES", value) for value in ("0", "4095", "64k")]
    + [
        (name, value)
        for name in ("IDP_RATELIMIT_ENABLED", "IDP_BENCH_MODE")
        for value in ("flase", "2")
    ]
    + [("IDP_ENV", value) for value in ("prod", "Production", "staging")]
    + [("IDP_LOG_LEVEL", value) for value in ("VERBOSE", "5x")]
    + [
        ("IDP_ISSUER", value)
        for value in (
            "idp.example",
            "ftp://idp.example",
            "https://",
            "https://idp.example/?tenant=1",
            "https://idp.example#top",
            "https://admin@idp.example",
            "https://[::1",
            "HTTPS://idp.example",
            "https://idp.example\r",
            "https://idp.example /tenant",
            "https://idp.example/tenant",  # served at the root only
            "https://idp.example/tenant/",
            "http://idp.example:99999",
            "http://idp.example:abc",
        )
    ]
    + [(name, "999999999999") for name in LIFETIME_SETTINGS]  # "never": not computable
    + [
        ("IDP_HSTS", value)
        for value in ("max-age=31536000; includeSubDomains\r", "forever", "max-age=-1")
    ]
    + [("IDP_WEBHOOK_TIMEOUT", value) for value in ("0", "61", "2.5s")]
    + [
        ("IDP_REDIS_URL", value)
        for value in ("127.0.0.1:6379", "http://127.0.0.1:6379", "redis://cache.example:port/0")
    ]
    + [("IDP_SMTP_URL", value) for value in ("mail.example", "smtp://", "smtp://mail.example:x")]
    + [
        ("IDP_MAIL_FROM", value)
        for value in ("idp", "idp <>", "@example.com", "a@b\nBcc: x@y", "a@b.example, c@d.example")
    ]
    + [
        ("IDP_DATABASE_URL", value)
        for value in (
            "postgres//db.example/idp",
            "mysql://idp@db.example/idp",
            "postgresql+psycopg2://idp@db.example/idp",
            "postgresql+psycopg://idp@db.example:port/idp",
        )
    ]
    + [("IDP_REDIS_PREFIX", value) for value in ("", "idp :", "idp\r", "x" * 65)]
    + [
        ("IDP_API_AUDIENCE", value)
        for value in (
            "api",
            "https://api.example#v1",
            "https://api example",
            "https://api.ex\u00e4",
        )
    ]
)


@pytest.mark.parametrize(("name", "value"), REFUSED)
def test_a_setting_that_cannot_work_refuses_to_start_and_names_it(
    monkeypatch, database_url, name, value
):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        create_app(_from_environment(database_url, name))


CONFIG_KEYS = {"IDP_DATABASE_URL": "SQLALCHEMY_DATABASE_URI"}


def _from_environment(database_url: str, name: str) -> dict:
    """The test configuration, but ``name`` is left to the environment."""
    config = app_config(database_url, "settings:")
    config.pop(CONFIG_KEYS.get(name, name), None)
    return config


def test_the_webhook_timeout_is_read_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("IDP_WEBHOOK_TIMEOUT", "3")
    assert create_app(app_config(database_url, "settings:")).config["IDP_WEBHOOK_TIMEOUT"] == 3


def test_session_lifetimes_are_read_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("IDP_SESSION_IDLE_TIMEOUT", "900")
    monkeypatch.setenv("IDP_SESSION_MAX_AGE", "86400")
    configured = create_app(app_config(database_url, "settings:"))
    assert configured.config["PERMANENT_SESSION_LIFETIME"] == timedelta(seconds=900)
    assert configured.config["IDP_SESSION_MAX_AGE"] == 86400


@pytest.mark.parametrize(
    ("general", "support", "value"),
    [
        ("IDP_SESSION_IDLE_TIMEOUT", "IDP_SUPPORT_SESSION_IDLE_TIMEOUT", "43201"),
        ("IDP_SESSION_MAX_AGE", "IDP_SUPPORT_SESSION_MAX_AGE", "604801"),
    ],
)
def test_a_support_session_lifetime_longer_than_everyones_refuses_to_start(
    monkeypatch, database_url, general, support, value
):
    monkeypatch.setenv(support, value)
    with pytest.raises(ConfigurationError) as refused:
        create_app(app_config(database_url, "settings:"))
    message = str(refused.value)
    assert support in message and general in message and value in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("environment", "idle", "max_age"),
    [
        ({}, 1800, 36000),
        (
            {"IDP_SUPPORT_SESSION_IDLE_TIMEOUT": "600", "IDP_SUPPORT_SESSION_MAX_AGE": "28800"},
            600,
            28800,
        ),
        ({"IDP_SESSION_IDLE_TIMEOUT": "900", "IDP_SESSION_MAX_AGE": "7200"}, 900, 7200),
    ],
)
def test_support_sessions_end_sooner_unless_everyones_end_sooner_still(
    monkeypatch, database_url, environment, idle, max_age
):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    configured = create_app(app_config(database_url, "settings:"))
    assert configured.config["IDP_SUPPORT_SESSION_IDLE_TIMEOUT"] == idle
    assert configured.config["IDP_SUPPORT_SESSION_MAX_AGE"] == max_age


def test_rate_limits_are_read_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("IDP_TOKEN_RATE_LIMIT", "6000/minute")
    monkeypatch.setenv("IDP_LOGIN_RATE_LIMIT", "")
    configured = create_app(app_config(database_url, "settings:"))
    assert configured.config["IDP_TOKEN_RATE_LIMIT"] == "6000/minute"
    assert configured.config["IDP_LOGIN_RATE_LIMIT"] == "10/minute;100/hour"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("IDP_RATELIMIT_ENABLED", "off", False),
        ("IDP_RATELIMIT_ENABLED", " Yes ", True),
        ("IDP_RATELIMIT_ENABLED", "", True),
        ("IDP_BENCH_MODE", "FALSE", False),
        ("IDP_LOG_LEVEL", "warning", "WARNING"),
        ("IDP_ISSUER", "https://idp.example/", "https://idp.example"),
        ("IDP_REDIS_URL", "rediss://cache.example:6380/1", "rediss://cache.example:6380/1"),
        ("IDP_MAIL_FROM", "no-reply@example.com", "no-reply@example.com"),
        ("IDP_ENV", "", "development"),
        ("IDP_TOKEN_RATE_LIMIT", "5/minute;10/minute", "5/minute;10/minute"),
        ("IDP_REDIS_PREFIX", "tenant-7:idp:", "tenant-7:idp:"),
        ("IDP_API_AUDIENCE", "https://api.example/v1", "https://api.example/v1"),
        ("IDP_API_AUDIENCE", "urn:example:whatsapp-api", "urn:example:whatsapp-api"),
    ],
)
def test_a_setting_is_read_in_any_of_its_spellings(
    monkeypatch, database_url, name, value, expected
):
    monkeypatch.setenv(name, value)
    configured = create_app(_from_environment(database_url, name))
    assert configured.config[name] == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IDP_SMTP_URL", "smtp://mailer:hunter2-secret@mail.example:25x"),
        ("IDP_REDIS_URL", "tcp://:hunter2-secret@cache.example:6379"),
        ("IDP_REDIS_URL", "redis://:hunter2-secret@cache.example:port/0"),
        ("IDP_ISSUER", "https://admin:hunter2-secret@idp.example"),
        ("IDP_DATABASE_URL", "postgresql://idp:hunter2-secret@db.example:port/idp"),
        ("IDP_DATABASE_URL", "mysql://idp:hunter2-secret@db.example/idp"),
        # A password holding "/" or "?" (base64 passwords do) ends no user part.
        ("IDP_DATABASE_URL", "postgresql+psycopg2://idp:hunter2/secret@db.example/idp"),
        ("IDP_REDIS_URL", "redis://:hunter2/secret@cache.example:port/0"),
    ],
)
def test_a_refused_url_is_not_echoed_with_its_password(monkeypatch, database_url, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name) as refused:
        create_app(_from_environment(database_url, name))
    assert "hunter2" not in str(refused.value)


def test_production_needs_an_https_issuer(monkeypatch, database_url):
    production = {"IDP_ENV": "production", "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://x@h/d"}
    with pytest.raises(ConfigurationError, match="IDP_ISSUER must be an https URL"):
        create_app(
            app_config(database_url, "settings:", **production, IDP_ISSUER="http://idp.example")
        )
    secure = create_app(
        app_config(database_url, "settings:", **production, IDP_ISSUER="https://idp.example")
    )
    assert secure.config["SESSION_COOKIE_SECURE"] is True


def test_production_never_exposes_the_benchmark_endpoints(database_url):
    with pytest.raises(ConfigurationError, match="IDP_BENCH_MODE"):
        create_app(
            app_config(
                database_url,
                "settings:",
                IDP_ENV="production",
                IDP_BENCH_MODE=True,
                IDP_ISSUER="https://idp.example",
                SQLALCHEMY_DATABASE_URI="postgresql+psycopg://x@h/d",
            )
        )


@pytest.mark.parametrize(
    "written",
    ["postgres://idp:p%40ss@db.example:5432/idp", "postgresql://idp:p%40ss@db.example:5432/idp"],
)
def test_a_postgresql_url_as_hosting_platforms_write_it_uses_psycopg(
    monkeypatch, database_url, written
):
    # SQLAlchemy would reach for psycopg2, which is not installed: the first query would fail.
    monkeypatch.setenv("IDP_DATABASE_URL", written)
    configured = create_app(_from_environment(database_url, "IDP_DATABASE_URL"))
    assert configured.config["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql+psycopg://idp:p%40ss@db.example:5432/idp"
    )


@pytest.mark.parametrize("command", [["db", "upgrade"], ["demo"], ["purge", "--dry-run"]])
def test_a_refused_setting_at_the_command_line_is_one_line_not_a_traceback(monkeypatch, command):
    from click.testing import CliRunner

    from idp.cli import main

    monkeypatch.setenv("IDP_ENV", "prod")
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2
    # The setting is at fault, not the command line: no usage to send the operator astray.
    assert result.output.strip() == (
        "Error: IDP_ENV must be one of development, production, got 'prod'"
    )


@pytest.mark.parametrize(
    ("secret_key", "kek", "named"),
    [
        ("x", "k" * 43, "IDP_SECRET_KEY must be at least 43 random characters"),
        ("s" * 43, "hunter2", "IDP_KEY_ENCRYPTION_KEY must be at least 43 random characters"),
        ("same" * 11, "same" * 11, "IDP_SECRET_KEY and IDP_KEY_ENCRYPTION_KEY must differ"),
    ],
)
def test_production_refuses_a_guessable_or_shared_secret(database_url, secret_key, kek, named):
    # From one session cookie, a short secret key can be found offline: then every
    # CSRF token, and the names of the failed-login counters, follow.
    production = {
        "IDP_ENV": "production",
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://x@h/d",
        "IDP_ISSUER": "https://idp.example",
        "SECRET_KEY": secret_key,
        "IDP_KEY_ENCRYPTION_KEY": kek,
    }
    with pytest.raises(ConfigurationError, match=named) as refused:
        create_app(app_config(database_url, "settings:", **production))
    assert "hunter2" not in str(refused.value)

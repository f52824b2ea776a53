"""Settings that cannot work are refused when the service starts, with the setting named."""

from __future__ import annotations

from datetime import timedelta

import pytest

from idp import create_app
from idp.config import RATE_LIMIT_SETTINGS, ConfigurationError
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
    + [
        (name, value)
        for name in ("IDP_SESSION_IDLE_TIMEOUT", "IDP_SESSION_MAX_AGE")
        for value in ("0", "-5", "1.5", "a week")
    ]
)


@pytest.mark.parametrize(("name", "value"), REFUSED)
def test_a_setting_that_cannot_work_refuses_to_start_and_names_it(
    monkeypatch, database_url, name, value
):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        create_app(app_config(database_url, "settings:"))


def test_session_lifetimes_are_read_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("IDP_SESSION_IDLE_TIMEOUT", "900")
    monkeypatch.setenv("IDP_SESSION_MAX_AGE", "86400")
    configured = create_app(app_config(database_url, "settings:"))
    assert configured.config["PERMANENT_SESSION_LIFETIME"] == timedelta(seconds=900)
    assert configured.config["IDP_SESSION_MAX_AGE"] == 86400


def test_rate_limits_are_read_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("IDP_TOKEN_RATE_LIMIT", "6000/minute")
    monkeypatch.setenv("IDP_LOGIN_RATE_LIMIT", "")
    configured = create_app(app_config(database_url, "settings:"))
    assert configured.config["IDP_TOKEN_RATE_LIMIT"] == "6000/minute"
    assert configured.config["IDP_LOGIN_RATE_LIMIT"] == "10/minute;100/hour"

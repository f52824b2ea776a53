"""Settings that cannot work are refused when the service starts, with the setting named."""

from __future__ import annotations

import pytest

from idp import create_app
from idp.config import ConfigurationError
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

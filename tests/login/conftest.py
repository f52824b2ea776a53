"""The login tests reuse the OAuth test helpers (browser-like client, flows, clients)."""

from tests.oauth.conftest import browser, flow, hub_clients, partner_world  # noqa: F401

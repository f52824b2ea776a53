"""The two-step sign-in tests reuse the OAuth test helpers (a partner world with hub clients)."""

from tests.oauth.conftest import hub_clients, partner_world  # noqa: F401

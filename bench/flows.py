"""The service's own scenarios: token endpoint, introspection, API-key check, login, code flow."""

from __future__ import annotations

FLOWS: list = []
REVOCATION_CHECKS: list = []

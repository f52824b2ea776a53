"""Consent: partners ask, clients grant channels and scopes, and may revoke at any time."""

"""Random, prefix-typed identifiers (``usr_…``, ``pa_…``, ``ch_…``), never sequential."""

import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def new_id(prefix: str, length: int = 22) -> str:
    """Return ``<prefix>_<length random base32 characters>`` (110 bits for the default)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


PREFIXES = {
    "partner": "pa",
    "client": "cl",
    "support": "su",
    "user": "usr",
    "membership": "mem",
    "waba": "wa",
    "channel": "ch",
    "invitation": "inv",
    "email_token": "et",
    "outbox": "msg",
    "audit": "evt",
}

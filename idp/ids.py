"""Random, prefix-typed identifiers (``usr_…``, ``pa_…``, ``ch_…``), never sequential."""

import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
# Byte b spells _ALPHABET[b % 32]: 256 is a multiple of 32, so each of the
# 32 characters stands for exactly 8 of the 256 byte values and every
# character carries 5 uniformly random bits. ``bytes.translate`` runs in C.
_SPELL = bytes(_ALPHABET.encode("ascii")[b % 32] for b in range(256))


def new_id(prefix: str, length: int = 22) -> str:
    """Return ``<prefix>_<length random base32 characters>`` (110 bits for the default)."""
    return f"{prefix}_" + secrets.token_bytes(length).translate(_SPELL).decode("ascii")


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
    "status_change": "csc",
    "oauth_client": "oc",
    "authorization_code": "ac",
    "access_token": "at",
    "refresh_token": "rt",
    "token_family": "tf",
    "signing_key": "sk",
    "consent_link": "lnk",
    "grant": "gr",
    "api_key": "key",
    "webhook_endpoint": "whe",
    "webhook_attempt": "wha",
    "import_record": "imp",
    "email_conflict": "ecf",
}
# Every kind of object has its own prefix, so an id says what it names.
assert len(set(PREFIXES.values())) == len(PREFIXES), "two kinds share a prefix"

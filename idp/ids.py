"""Random, prefix-typed identifiers (``usr_…``, ``pa_…``, ``ch_…``), never sequential."""

import base64
import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
# RFC 4648 base32 (done in C) spelled in the alphabet above, character for character.
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)


def new_id(prefix: str, length: int = 22) -> str:
    """Return ``<prefix>_<length random base32 characters>`` (110 bits for the default)."""
    # Each base32 character spells 5 whole random bits; the padding is never reached.
    raw = base64.b32encode(secrets.token_bytes(-(-5 * length // 8)))
    return f"{prefix}_" + raw.decode("ascii")[:length].translate(_FROM_RFC4648)


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

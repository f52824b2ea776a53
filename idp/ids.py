"""Prefix-typed identifiers (``usr_…``, ``pa_…``, ``ch_…``) in Crockford base32.

Most ids are random through and through (``new_id``). The rows written on
every sign-in, token exchange and event (authorization codes, token families,
refresh tokens, audit events, outbox messages, webhook attempts, channel
status changes) get ids that lead with their creation time instead
(``new_time_ordered_id``, the layout of RFC 9562's UUIDv7). A random key puts
each insert on a random page of its primary-key index, which in a table of
millions of rows is a page the database must first read in; a key that grows
with time puts them on the index's last pages, which stay in memory however
large the table grows. None of these ids is a secret, and each still carries
80 random bits.
"""

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
# Byte b spells _ALPHABET[b % 32]: 256 is a multiple of 32, so each of the
# 32 characters stands for exactly 8 of the 256 byte values and every
# character carries 5 uniformly random bits. ``bytes.translate`` runs in C.
_SPELL = bytes(_ALPHABET.encode("ascii")[b % 32] for b in range(256))
TIME_CHARS = 10  # milliseconds since 1970 in 50 bits, enough until the year 37,648
RANDOM_CHARS_AFTER_TIME = 16  # 80 bits: unique however many ids share a millisecond


def _random_chars(length: int) -> str:
    return secrets.token_bytes(length).translate(_SPELL).decode("ascii")


def new_id(prefix: str, length: int = 22) -> str:
    """Return ``<prefix>_<length random base32 characters>`` (110 bits for the default)."""
    return f"{prefix}_" + _random_chars(length)


def new_time_ordered_id(prefix: str) -> str:
    """Return ``<prefix>_<the time in ms, 10 characters><16 random characters>``.

    The alphabet is in ASCII order and the time has a fixed width, so an id
    made in a later millisecond sorts after an earlier one (across instances,
    as far as their clocks agree).
    """
    millis = time.time_ns() // 1_000_000
    spelled = "".join(_ALPHABET[(millis >> shift) & 31] for shift in range(45, -1, -5))
    return f"{prefix}_{spelled}" + _random_chars(RANDOM_CHARS_AFTER_TIME)


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

"""The channel API key format: ``d360_`` + lookup id + 256-bit secret + CRC32 checksum.

Everything after the prefix is base62, so a double click selects the whole key
and secret scanners can match ``d360_[0-9A-Za-z]{61}``. The checksum (CRC32 of
the rest, base62) lets the gateway refuse a mistyped or truncated key without
reading the database.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from dataclasses import dataclass

PREFIX = "d360_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LOOKUP_LENGTH = 12  # ~71 random bits: unique index, not a secret
SECRET_LENGTH = 43  # 62**43 > 2**256, encodes 32 random bytes
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
KEY_LENGTH = len(PREFIX) + LOOKUP_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH
_ALPHABET_SET = frozenset(ALPHABET)


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key: the text shown once, and what is stored."""

    text: str
    lookup_id: str
    secret_hash: str
    last_four: str


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def hash_key(text: str) -> str:
    """SHA-256 hex of the whole key (a high-entropy secret needs no slow hash)."""
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def generate_key() -> NewKey:
    """Make a new random key."""
    lookup = "".join(secrets.choice(ALPHABET) for _ in range(LOOKUP_LENGTH))
    secret = _base62(int.from_bytes(secrets.token_bytes(32), "big"), SECRET_LENGTH)
    body = PREFIX + lookup + secret
    text = body + _checksum(body)
    return NewKey(text=text, lookup_id=lookup, secret_hash=hash_key(text), last_four=text[-4:])


def parse_lookup_id(text: str) -> str | None:
    """Return the key's lookup id when it is well formed with a valid checksum, else None."""
    if len(text) != KEY_LENGTH or not text.startswith(PREFIX):
        return None
    rest = text[len(PREFIX) :]
    if not _ALPHABET_SET.issuperset(rest):
        return None
    body, checksum = text[:-CHECKSUM_LENGTH], text[-CHECKSUM_LENGTH:]
    if not secrets.compare_digest(_checksum(body), checksum):
        return None
    return rest[:LOOKUP_LENGTH]


def key_from_text(text: str) -> NewKey:
    """The stored form of a given well-formed key (fixed demo keys); ValueError otherwise."""
    lookup_id = parse_lookup_id(text)
    if lookup_id is None:
        raise ValueError("not a well-formed API key")
    return NewKey(text=text, lookup_id=lookup_id, secret_hash=hash_key(text), last_four=text[-4:])


def with_checksum(body: str) -> str:
    """Complete ``PREFIX + lookup + secret`` with its checksum (for fixed demo keys)."""
    return body + _checksum(body)

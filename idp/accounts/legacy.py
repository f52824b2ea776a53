"""Verification of password hashes imported from older systems (bcrypt, argon2i/d)."""

from __future__ import annotations

import re

import bcrypt

# The forms an older system may hand us: bcrypt ($2a$/$2b$/$2y$) and argon2 (i, d, id).
_BCRYPT = re.compile(r"^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$")
_ARGON2 = re.compile(
    r"^\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)


def is_supported_legacy_hash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` is a bcrypt or argon2 hash we can verify at first login."""
    return bool(_BCRYPT.match(stored_hash) or _ARGON2.match(stored_hash))


def verify_legacy_hash(stored_hash: str, password: str) -> bool:
    """Check ``password`` against a bcrypt hash; unknown formats never match."""
    if stored_hash.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            return bcrypt.checkpw(password.encode()[:72], stored_hash.encode())
        except ValueError:
            return False
    return False

"""Verification of password hashes imported from older systems (bcrypt, argon2i/d)."""

from __future__ import annotations

import bcrypt


def verify_legacy_hash(stored_hash: str, password: str) -> bool:
    """Check ``password`` against a bcrypt hash; unknown formats never match."""
    if stored_hash.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            return bcrypt.checkpw(password.encode()[:72], stored_hash.encode())
        except ValueError:
            return False
    return False

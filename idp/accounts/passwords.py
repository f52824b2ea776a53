"""Password hashing (argon2id) and the password rules (NIST SP 800-63B, no composition rules)."""

from __future__ import annotations

import contextlib
import functools
import gzip
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from idp.accounts.legacy import hash_problem, verify_legacy_hash

MIN_LENGTH = 8
MAX_LENGTH = 1024

# OWASP's minimum for argon2id: m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)

# A hash that costs as much as a real one, verified when the account does not
# exist so that timing does not reveal which addresses have accounts.
_DUMMY_HASH = HASHER.hash("timing-equaliser-not-a-password")


class WeakPassword(ValueError):
    """The password breaks a rule; the message says which, in words for the user."""


@functools.cache
def _common_passwords() -> frozenset[str]:
    data = resources.files("idp.accounts").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def check_password_rules(password: str) -> None:
    """Raise ``WeakPassword`` unless the password is long enough and not a common one."""
    if not isinstance(password, str):
        raise WeakPassword("The password must be text.")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")
    if password.lower().strip() in _common_passwords():
        raise WeakPassword("This password is too common. Choose a less predictable one.")


def hash_password(password: str) -> str:
    """Hash with argon2id at the current parameters."""
    return HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-time check of ``password``; a missing hash still costs one verification."""
    if not stored_hash:
        _burn()
        return False
    if hash_problem(stored_hash) is not None:
        # A hash that cannot verify, or whose parameters would tie up a worker
        # (or its memory) on every attempt, is never run: a wrong password.
        _burn()
        return False
    if not stored_hash.startswith("$argon2"):
        return verify_legacy_hash(stored_hash, password)
    try:
        return HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with other parameters (or another algorithm) than today's."""
    if not stored_hash.startswith("$argon2id$"):
        return True
    return HASHER.check_needs_rehash(stored_hash)


def _burn() -> None:
    with contextlib.suppress(VerificationError):
        HASHER.verify(_DUMMY_HASH, "x")

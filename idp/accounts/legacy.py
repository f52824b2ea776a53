"""Verification of password hashes imported from older systems (bcrypt, argon2i/d/id).

A stored hash decides what its own verification costs, and anyone may try a
password on any address: a hash is only accepted (at import, and again before
each verification) when its parameters are ones argon2 or bcrypt can verify
and that cost no more than about a second of one worker. A legacy hash is
rehashed to the service's argon2id at the first login, so these bounds only
have to admit what older systems commonly used.
"""

from __future__ import annotations

import base64
import binascii
import re

import bcrypt
from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError

# bcrypt refuses a cost below 4; each step doubles the work, 14 is about a second.
BCRYPT_MIN_COST, BCRYPT_MAX_COST = 4, 14
# argon2: at most 256 MiB, 10 passes, 1 GiB of memory passes in all
# (libsodium's "moderate" is 256 MiB x 3), 16 lanes; salts of 8 bytes or more
# (argon2's minimum); versions 1.0 (v=16) and 1.3 (v=19).
ARGON2_MAX_MEMORY_KIB = 256 * 1024
ARGON2_MAX_TIME_COST = 10
ARGON2_MAX_WORK_KIB = 1024 * 1024
ARGON2_MAX_PARALLELISM = 16
ARGON2_MIN_SALT_BYTES = 8
ARGON2_MIN_HASH_BYTES = 4
ARGON2_VERSIONS = (16, 19)

# The forms an older system may hand us: bcrypt ($2a$/$2b$/$2y$) and argon2 (i, d, id).
_BCRYPT = re.compile(r"^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$")
_ARGON2 = re.compile(
    r"^\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$"
)


def _b64_length(text: str) -> int | None:
    try:
        return len(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None


def _argon2_problem(stored_hash: str, salt: str, digest: str) -> str | None:
    try:
        params = extract_parameters(stored_hash)
    except (InvalidHashError, ValueError):
        return "not a well-formed argon2 hash"
    salt_len, hash_len = _b64_length(salt), _b64_length(digest)
    if salt_len is None or hash_len is None:
        return "not a well-formed argon2 hash (its salt or hash is not base64)"
    checks = (
        (params.version in ARGON2_VERSIONS, f"argon2 version {params.version} is unknown"),
        (salt_len >= ARGON2_MIN_SALT_BYTES, f"argon2 salt of {salt_len} bytes is too short"),
        (hash_len >= ARGON2_MIN_HASH_BYTES, f"argon2 hash of {hash_len} bytes is too short"),
        (
            1 <= params.parallelism <= ARGON2_MAX_PARALLELISM,
            f"argon2 parallelism p={params.parallelism} is outside 1..{ARGON2_MAX_PARALLELISM}",
        ),
        (
            1 <= params.time_cost <= ARGON2_MAX_TIME_COST,
            f"argon2 time cost t={params.time_cost} is outside 1..{ARGON2_MAX_TIME_COST}",
        ),
        (
            8 * params.parallelism <= params.memory_cost <= ARGON2_MAX_MEMORY_KIB,
            f"argon2 memory cost m={params.memory_cost} KiB is outside "
            f"{8 * params.parallelism}..{ARGON2_MAX_MEMORY_KIB}",
        ),
        (
            params.memory_cost * params.time_cost <= ARGON2_MAX_WORK_KIB,
            f"argon2 memory x time cost is above {ARGON2_MAX_WORK_KIB} KiB",
        ),
    )
    return next((problem for ok, problem in checks if not ok), None)


def hash_problem(stored_hash: str) -> str | None:
    """Why ``stored_hash`` cannot or must not be verified, or None when it can be."""
    found = _BCRYPT.match(stored_hash)
    if found:
        cost = int(found.group(1))
        if not BCRYPT_MIN_COST <= cost <= BCRYPT_MAX_COST:
            return f"bcrypt cost {cost} is outside {BCRYPT_MIN_COST}..{BCRYPT_MAX_COST}"
        return None
    found = _ARGON2.match(stored_hash)
    if found:
        return _argon2_problem(stored_hash, found.group(1), found.group(2))
    return "neither a bcrypt nor an argon2 hash"


def verify_legacy_hash(stored_hash: str, password: str) -> bool:
    """Check ``password`` against a bcrypt hash; unknown formats and bounds never match."""
    if stored_hash.startswith(("$2a$", "$2b$", "$2y$")) and hash_problem(stored_hash) is None:
        try:
            return bcrypt.checkpw(password.encode()[:72], stored_hash.encode())
        except ValueError:
            return False
    return False

"""Password hashing (argon2id) and the password rules (NIST SP 800-63B, no composition rules).

A password is put in Unicode NFKC form before it is checked, hashed or
verified (NIST SP 800-63B 5.1.1.2), so that the same characters typed on
another device or keyboard layout (precomposed or decomposed accents,
full-width letters) are the same password. Spaces are kept as typed; NFKC
only turns the no-break space and its kin into plain spaces.

Hashes made before passwords were normalized hold the password as typed:
``verify_and_update`` accepts that form too and hands back a hash of the
normalized form to store in its place.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import re
import unicodedata
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from idp.accounts.emails import InvalidEmail, normalize_email
from idp.accounts.legacy import hash_problem, verify_legacy_hash

MIN_LENGTH = 8
MAX_LENGTH = 1024

# OWASP's minimum for argon2id: m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)

# A hash that costs as much as a real one, verified when the account does not
# exist so that timing does not reveal which addresses have accounts.
_DUMMY_HASH = HASHER.hash("timing-equaliser-not-a-password")


# The service's own names: context-specific words (NIST SP 800-63B 5.1.1.2) that no
# password may be, as the account's address and its organizations' names may not.
SERVICE_NAMES = ("Partner Hub", "Client Hub", "Support console", "WhatsApp", "WhatsApp Business")


class WeakPassword(ValueError):
    """The password breaks a rule; the message says which, in words for the user."""


@functools.cache
def _common_passwords() -> frozenset[str]:
    data = resources.files("idp.accounts").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def normalize_password(password: str) -> str:
    """The form a password is checked, hashed and verified in: Unicode NFKC."""
    return unicodedata.normalize("NFKC", password)


def _folded(text: str) -> str:
    # NFKC, case-folded, NFKC again (folding can leave a letter and a combining
    # mark where the other case had one character), without surrounding spaces.
    return unicodedata.normalize("NFKC", normalize_password(text).casefold()).strip()


def _is_the_address(password: str, email: str) -> bool:
    folded = _folded(password)
    forms = {_folded(email)}
    with contextlib.suppress(InvalidEmail):
        forms.add(normalize_email(email))  # the domain IDNA-encoded, as accounts compare it
    local_parts = {form.rpartition("@")[0] for form in forms} - {""}
    return folded in forms or folded in local_parts


def _bare(text: str) -> str:
    """The folded letters and digits of ``text``, without the digits at either end."""
    return re.sub(r"[\W_]+", "", _folded(text)).strip("0123456789")


def _is_a_name(password: str, names: tuple[str, ...]) -> bool:
    bare = _bare(password)
    return bool(bare) and bare in {_bare(name) for name in (*SERVICE_NAMES, *names)}


def check_password_rules(password: str, *, email: str, names: tuple[str, ...] = ()) -> None:
    """Raise ``WeakPassword`` unless the password is long enough, not common, not a name.

    ``email`` is the account's address: neither it nor its part before the @ is
    a password (NIST SP 800-63B 5.1.1.2, context-specific words). Nor is the
    name of this service (``SERVICE_NAMES``) or one of ``names`` (the account's
    organizations), whatever its case, spaces and marks, with or without digits
    around it. Lengths count the characters of the normalized form.
    """
    if not isinstance(password, str):
        raise WeakPassword("The password must be text.")
    normalized = normalize_password(password)
    if len(normalized) < MIN_LENGTH:
        raise WeakPassword(f"Use at least {MIN_LENGTH} characters.")
    if len(normalized) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")
    if _folded(normalized) in _common_passwords():
        raise WeakPassword("This password is too common. Choose a less predictable one.")
    if _is_the_address(normalized, email):
        raise WeakPassword(
            "Do not use your email address, or its part before the @, as your password."
        )
    if _is_a_name(normalized, names):
        raise WeakPassword(
            "Do not use the name of this service or of your business as your password."
        )


def hash_password(password: str) -> str:
    """Hash the normalized password with argon2id at the current parameters."""
    return HASHER.hash(normalize_password(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-time check of ``password``; a missing hash still costs as much as a real one."""
    return _matching_form(stored_hash, password) is not None


def verify_and_update(stored_hash: str | None, password: str) -> tuple[bool, str | None]:
    """Check ``password``; on a match, also a new hash to store when the stored one is outdated.

    Outdated: made with other parameters or another algorithm, or made from the
    password as typed before passwords were normalized.
    """
    form = _matching_form(stored_hash, password)
    if form is None:
        return False, None
    if form != normalize_password(password) or needs_rehash(stored_hash):
        return True, hash_password(password)
    return True, None


def _matching_form(stored_hash: str | None, password: str) -> str | None:
    """The form of ``password`` (normalized, else as typed) that ``stored_hash`` verifies.

    A password whose normalized form differs from the typed one costs two
    verifications when it is wrong, whether or not the account exists (a
    missing or unusable hash is replaced by as many dummy ones): the time tells
    only what the typed password looks like, never whether the account exists.
    """
    normalized = normalize_password(password)
    forms = [normalized] if normalized == password else [normalized, password]
    if not stored_hash or hash_problem(stored_hash) is not None:
        # A hash that cannot verify, or whose parameters would tie up a worker
        # (or its memory) on every attempt, is never run: a wrong password.
        for _ in forms:
            _burn()
        return None
    return next((form for form in forms if _verify(stored_hash, form)), None)


def _verify(stored_hash: str, password: str) -> bool:
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

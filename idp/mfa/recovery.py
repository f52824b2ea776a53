"""Recovery codes: ten single-use codes, for the day the authenticator app is gone.

Each has 80 random bits (16 base32 characters, shown in groups of four), so
a SHA-256 of it, salted with the account's id, is all that needs keeping. A
typed code is compared with each unused code's hash in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa

from idp.extensions import db
from idp.mfa.models import RecoveryCode
from idp.timeutil import utcnow

COUNT = 10
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32: no 0/O or 1/I to mistake
_LENGTH = 16


def _hash(user_id: str, code: str) -> str:
    return hashlib.sha256(f"{user_id}:{code}".encode()).hexdigest()


def _normalized(typed: str) -> str:
    return "".join(ch for ch in typed.upper() if ch.isalnum())


def _shown(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def replace_codes(user_id: str) -> list[str]:
    """Give ``user_id`` ten new codes (the old ones stop working); returns them, shown once.

    The caller commits.
    """
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = ["".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH)) for _ in range(COUNT)]
    db.session.add_all(RecoveryCode(user_id=user_id, code_hash=_hash(user_id, c)) for c in codes)
    return [_shown(code) for code in codes]


def remove_codes(user_id: str) -> None:
    """Delete every recovery code of ``user_id``; the caller commits."""
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def remaining(user_id: str) -> int:
    """How many unused recovery codes ``user_id`` has."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )


def use_code(user_id: str, typed: str) -> bool:
    """Spend ``typed`` if it is an unused code of ``user_id``; whether it was.

    The spending is one conditional UPDATE: of two sign-ins racing with the
    same code, one wins. The caller commits.
    """
    code = _normalized(typed)
    if len(code) != _LENGTH:
        return False
    wanted = _hash(user_id, code).encode()
    unused = db.session.execute(
        sa.select(RecoveryCode.id, RecoveryCode.code_hash).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    found = None
    for row_id, code_hash in unused:
        if hmac.compare_digest(code_hash.encode(), wanted):
            found = row_id
    if found is None:
        return False
    spent = db.session.execute(
        sa.update(RecoveryCode)
        .where(RecoveryCode.id == found, RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return spent.rowcount == 1

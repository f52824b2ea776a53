"""The operator's acts on signing keys: a scheduled rotation, and revoking a leaked key.

Rotation is by time: ``rotate`` creates keys that activate only after
``PUBLISH_AHEAD`` (longer than the JWKS cache lifetime), so every relying party
has seen their ``kid`` before the first token they sign. A retired key stays
published until every token it signed has expired.

Revocation is at once: ``revoke`` withdraws a key suspected leaked, and when it
was its algorithm's active key a new one signs from that moment.
"""

from __future__ import annotations

from datetime import datetime

from idp.errors import Conflict, NotFound
from idp.extensions import db
from idp.keys.models import SIGNING_ALGORITHMS, SigningKey
from idp.keys.service import add_first_key, create_key, keyring
from idp.timeutil import utcnow


def rotate(actor: dict[str, str]) -> list[SigningKey]:
    """Publish a new key of every algorithm now, each signing after ``PUBLISH_AHEAD``; commit.

    An algorithm without a key yet gets one signing at once first, so that it has
    a key to retire. Each new key, that first one too, is recorded
    (``signing_key.published``) as the act of ``actor`` (``actor_type``/``actor_id``),
    in the same transaction. Returns every key made: the first ones (signing now),
    then those that sign after ``PUBLISH_AHEAD``.
    """
    first = [row for algorithm in SIGNING_ALGORITHMS if (row := add_first_key(algorithm))]
    rows = [
        create_key(activate_immediately=False, algorithm=algorithm)
        for algorithm in SIGNING_ALGORITHMS
    ]
    for row in [*first, *rows]:
        record_published(row, actor)
    db.session.commit()
    keyring().invalidate()
    return [*first, *rows]


def record_published(row: SigningKey, actor: dict[str, str]) -> None:
    """Record the new key ``row`` (``signing_key.published``) as the act of ``actor``."""
    from idp.audit.service import record_event

    record_event(
        "signing_key.published",
        **actor,
        target_type="signing_key",
        target_id=row.kid,
        after={"algorithm": row.algorithm, "activates_at": row.activates_at.isoformat() + "Z"},
    )


def revoke(
    kid: str, *, ticket: str, reason: str, actor: dict[str, str]
) -> tuple[SigningKey, SigningKey | None]:
    """Withdraw the key ``kid`` at once (its private half may be leaked); commit.

    In one transaction: the key is marked revoked, so it leaves the JWKS and no
    token it signed verifies on any instance from its next request; if it was
    its algorithm's active key, a new key of that algorithm signs from now on,
    without ``PUBLISH_AHEAD`` (a relying party briefly meeting an unknown
    ``kid`` is better than tokens of a leaked key). Recorded
    (``signing_key.revoked``, with ``ticket`` and ``reason``) as the act of
    ``actor``. Returns the revoked key and its replacement, if one was made.
    Raises ``NotFound`` for an unknown kid, ``Conflict`` for a revoked key.
    """
    from idp.audit.service import record_event

    row = db.session.get(SigningKey, kid)
    if row is None:
        raise NotFound("No such signing key.", fields={"kid": [kid]})
    now = utcnow()
    was_active = _active_kid(row.algorithm, now) == row.kid
    # Conditional, so that of two operators revoking the same key at once, one does.
    marked = db.session.execute(
        db.update(SigningKey)
        .where(SigningKey.kid == row.kid, SigningKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if marked.rowcount != 1:
        raise Conflict("The signing key is already revoked.", fields={"kid": [kid]})
    replacement = (
        create_key(activate_immediately=True, algorithm=row.algorithm) if was_active else None
    )
    record_event(
        "signing_key.revoked",
        **actor,
        target_type="signing_key",
        target_id=row.kid,
        before={"algorithm": row.algorithm, "active": was_active},
        after={
            "revoked_at": now.isoformat() + "Z",
            "replaced_by": replacement.kid if replacement is not None else None,
        },
        ticket=ticket,
        reason=reason,
    )
    db.session.commit()
    keyring().invalidate()
    return row, replacement


def _active_kid(algorithm: str, now: datetime) -> str | None:
    """The kid of the stored key that signs for ``algorithm`` now (``active_key``'s choice)."""
    return db.session.scalar(
        db.select(SigningKey.kid)
        .where(
            SigningKey.algorithm == algorithm,
            SigningKey.activates_at <= now,
            SigningKey.revoked_at.is_(None),
        )
        .order_by(SigningKey.activates_at.desc(), SigningKey.kid.desc())
        .limit(1)
    )

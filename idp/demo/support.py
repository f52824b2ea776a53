"""Two imported accounts whose addresses collide, so a person can work the conflict queue."""

from __future__ import annotations

import json

import bcrypt

from idp.demo.base import DEMO_PASSWORD
from idp.extensions import db
from idp.support.importer import import_line
from idp.support.models import EmailConflict

# The same person (or two people) used one address in the old Partner Hub and the
# old Client Hub; both accounts arrive with their legacy bcrypt hash.
LEGACY_LINES = [
    (
        "partner",
        {
            "email": "jordan@legacy.example",
            "name": "Jordan Partner",
            "organization": "Acme Messaging",
            "role": "member",
        },
    ),
    (
        "client",
        {
            "email": "Jordan@Legacy.example",
            "name": "Jordan Client",
            "organization": "Red Rooftops",
            "role": "member",
        },
    ),
]


def load(data: dict) -> None:
    """Import the two legacy accounts (the second is held in the conflict queue)."""
    legacy_hash = bcrypt.hashpw(DEMO_PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    for number, (hub, fields) in enumerate(LEGACY_LINES, start=1):
        import_line(hub, number, json.dumps(fields | {"password_hash": legacy_hash}))
    db.session.flush()
    conflicts = db.session.scalars(
        db.select(EmailConflict).where(EmailConflict.email_normalized == "jordan@legacy.example")
    )
    data["email_conflicts"] = [
        {
            "id": conflict.id,
            "email": conflict.email,
            "held_account": {"id": conflict.held_user_id, "hub": conflict.held_user.hub},
            "holder_account": {"id": conflict.holder_user_id, "hub": conflict.holder_user.hub},
            "resolved": conflict.resolved_at is not None,
        }
        for conflict in conflicts
    ]

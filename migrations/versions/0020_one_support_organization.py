"""At most one support organization made because there was none, enforced by the database.

Revision ID: 0020_one_support_organization
Revises: 0019_revoked_signing_keys

``idp support create-staff`` and ``idp clients create-platform`` make the
support organization when they find none. Two of them run at the same
moment each stored one, so support staff and platform clients were split
between two support organizations. The new ``organizations.first_of``
names the kind an organization was made first of, under a UNIQUE
constraint: the second insert fails and its command joins the organization
that was stored.

The oldest support organization already stored becomes the first; one made
twice before stays as it is (the commands keep using the oldest).
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_one_support_organization"
down_revision = "0019_revoked_signing_keys"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``organizations.first_of`` (unique) and set it on the oldest support organization."""
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_of", sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_organizations_first_of"), ["first_of"])
    op.execute(
        "UPDATE organizations SET first_of = 'support' WHERE kind = 'support' AND NOT EXISTS ("
        " SELECT 1 FROM organizations AS earlier"
        " WHERE earlier.kind = 'support'"
        " AND (earlier.created_at < organizations.created_at"
        "  OR (earlier.created_at = organizations.created_at"
        "   AND earlier.id < organizations.id)))"
    )


def downgrade():
    """Drop the column and its constraint."""
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_organizations_first_of"), type_="unique")
        batch_op.drop_column("first_of")

"""Join the concept branches into one schema history.

The OAuth, consent, support and webhook tables were added as parallel branches
off the foundation; from here on there is a single head again.

Revision ID: 0006_merge
Revises: 0002_oauth, 0003_consent, 0004_support, 0005_webhooks
Create Date: 2026-11-25 13:59:48.338037

"""
# revision identifiers, used by Alembic.
revision = '0006_merge'
down_revision = ('0002_oauth', '0003_consent', '0004_support', '0005_webhooks')
branch_labels = None
depends_on = None


def upgrade():
    """Nothing to change: this revision only joins the branches."""


def downgrade():
    """Nothing to change: this revision only joins the branches."""

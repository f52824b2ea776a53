"""An account's authenticator secret and its recovery codes."""

from __future__ import annotations

import sqlalchemy as sa

from idp.accounts.models import User
from idp.extensions import db
from idp.models import created_at_column


class TwoStepSecret(db.Model):
    """The shared TOTP secret of one account, sealed with the key-encryption key.

    ``enabled_at`` is empty while the person has not yet typed a code from the
    app (enrolment); only an enabled secret asks for a code at sign-in.
    ``last_step`` is the 30-second step of the last code accepted: a code of that
    step or an earlier one is refused, so a code seen over a shoulder is spent.
    """

    __tablename__ = "two_step_secrets"

    user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), primary_key=True)
    sealed_secret = sa.Column(sa.Text, nullable=False)
    enabled_at = sa.Column(sa.DateTime, nullable=True)
    last_step = sa.Column(sa.BigInteger, nullable=True)
    created_at = created_at_column()


class RecoveryCode(db.Model):
    """One single-use recovery code of an account; only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=False, index=True)
    code_hash = sa.Column(sa.String(64), nullable=False, unique=True)
    used_at = sa.Column(sa.DateTime, nullable=True)
    created_at = created_at_column()


# Only a confirmed secret asks for a code; one being set up does not yet.
_CONFIRMED = TwoStepSecret.enabled_at.is_not(None)
# Whether the account of the row a query reads (``User``) asks for a code after its password.
TWO_STEP_ON = sa.exists().where(TwoStepSecret.user_id == User.id, _CONFIRMED).label("two_step_on")


def two_step_enabled(user_id: str) -> TwoStepSecret | None:
    """The enabled secret of ``user_id``: signing in asks for a code after the password."""
    return db.session.scalar(
        sa.select(TwoStepSecret).where(TwoStepSecret.user_id == user_id, _CONFIRMED)
    )

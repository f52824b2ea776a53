"""WABAs, channels and each channel's status history."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import relationship

from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.models import created_at_column, id_column, one_of
from idp.timeutil import utcnow
from policies.channels import ACCOUNT_MODES, CHANNEL_STATUSES, WABA_VERIFICATION_STATES


class Waba(db.Model):
    """A client's WhatsApp Business Account."""

    __tablename__ = "wabas"
    __table_args__ = (one_of("verification_state", WABA_VERIFICATION_STATES, "verification"),)

    id = id_column()
    client_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=False, index=True
    )
    name = sa.Column(sa.String(200), nullable=False)
    verification_state = sa.Column(sa.String(20), nullable=False, default="unverified")
    created_at = created_at_column()

    client = relationship("Organization")
    channels = relationship("Channel", back_populates="waba", order_by="Channel.created_at")

    @classmethod
    def create(cls, client, name: str, **kwargs) -> Waba:
        """Build a WABA with a fresh ``wa_`` id."""
        return cls(id=new_id(PREFIXES["waba"]), client=client, name=name, **kwargs)


class Channel(db.Model):
    """One phone number (E.164) of a WABA, with the lifecycle in ``policies.channels``.

    A number has at most one channel that is not terminated, across the whole
    platform (a partial unique index), and becomes reusable after termination.
    """

    __tablename__ = "channels"
    __table_args__ = (
        one_of("status", CHANNEL_STATUSES, "status"),
        one_of("account_mode", ACCOUNT_MODES, "account_mode"),
        sa.Index(
            "uq_channels_active_phone_number",
            "phone_number",
            unique=True,
            sqlite_where=sa.text("status != 'terminated'"),
            postgresql_where=sa.text("status != 'terminated'"),
        ),
    )

    id = id_column()
    waba_id = sa.Column(sa.String(40), sa.ForeignKey("wabas.id"), nullable=False, index=True)
    client_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=False, index=True
    )
    phone_number = sa.Column(sa.String(20), nullable=False)
    display_name = sa.Column(sa.String(200), nullable=False)
    status = sa.Column(sa.String(20), nullable=False, default="created")
    account_mode = sa.Column(sa.String(10), nullable=False, default="sandbox")
    created_at = created_at_column()
    status_changed_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    terminated_at = sa.Column(sa.DateTime, nullable=True)

    waba = relationship("Waba", back_populates="channels")
    client = relationship("Organization")
    history = relationship(
        "ChannelStatusChange", back_populates="channel", order_by="ChannelStatusChange.created_at"
    )

    @classmethod
    def create(cls, waba: Waba, phone_number: str, display_name: str, **kwargs) -> Channel:
        """Build a channel with a fresh ``ch_`` id on a WABA."""
        return cls(
            id=new_id(PREFIXES["channel"]),
            waba=waba,
            client_id=waba.client_id,
            phone_number=phone_number,
            display_name=display_name,
            **kwargs,
        )


class ChannelStatusChange(db.Model):
    """One step of a channel's status history, with its reason."""

    __tablename__ = "channel_status_changes"

    id = sa.Column(sa.String(40), primary_key=True)
    channel_id = sa.Column(sa.String(40), sa.ForeignKey("channels.id"), nullable=False, index=True)
    from_status = sa.Column(sa.String(20), nullable=True)
    to_status = sa.Column(sa.String(20), nullable=False)
    reason = sa.Column(sa.String(500), nullable=True)
    actor_id = sa.Column(sa.String(80), nullable=True)
    created_at = created_at_column()

    channel = relationship("Channel", back_populates="history")

"""Shared column helpers for the concept packages' models."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from idp.timeutil import utcnow


def id_column(**kwargs) -> sa.Column:
    """Primary-key column for a prefix-typed random id."""
    return sa.Column(sa.String(40), primary_key=True, **kwargs)


def created_at_column() -> sa.Column:
    """Creation timestamp, naive UTC."""
    return sa.Column(sa.DateTime, nullable=False, default=utcnow)


def one_of(column: str, values: Iterable[str], name: str) -> sa.CheckConstraint:
    """CHECK constraint that keeps an enumerated string column within its values."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)

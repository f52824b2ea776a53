"""Time in one place: timezone-aware UTC everywhere, stored as naive UTC in the database."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime (the database convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


def isoformat(value: datetime | None) -> str | None:
    """Render a stored naive-UTC datetime as RFC 3339 with a ``Z`` suffix."""
    if value is None:
        return None
    return value.replace(microsecond=0).isoformat() + "Z"

"""Time in one place: timezone-aware UTC everywhere, stored as naive UTC in the database."""

from datetime import UTC, datetime

from marshmallow import fields


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime (the database convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


def epoch_seconds(value: datetime) -> float:
    """Seconds since the epoch of a stored naive-UTC datetime (read as local time it would
    be off by the server's offset)."""
    return value.replace(tzinfo=UTC).timestamp()


def isoformat(value: datetime | None) -> str | None:
    """Render a stored naive-UTC datetime as RFC 3339 with a ``Z`` suffix."""
    if value is None:
        return None
    return value.replace(microsecond=0).isoformat() + "Z"


class Timestamp(fields.DateTime):
    """An output field: a stored naive-UTC datetime as RFC 3339 with ``Z``.

    A ``DateTime`` so that the API document says ``string``/``date-time`` (and
    ``nullable`` with ``allow_none=True``)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return isoformat(value)

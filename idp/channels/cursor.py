"""Keyset cursors over ``(time, id)`` for the channel, client and webhook listings.

A page ends with the key of its last row; the next page starts strictly after
it, so rows inserted meanwhile never shift or repeat what a reader already saw.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from idp.errors import InvalidCursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass
class Page:
    """One page of rows and the cursor of the next one (None on the last page)."""

    items: list[Any] = field(default_factory=list)
    next_cursor: str | None = None


def encode(moment: datetime, row_id: str) -> str:
    """The opaque cursor of a row's ``(time, id)`` key."""
    raw = json.dumps([moment.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, str]:
    """The ``(time, id)`` key inside a cursor made by ``encode``."""
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        moment, row_id = json.loads(raw)
        return datetime.fromisoformat(moment), str(row_id)
    except (ValueError, TypeError, RecursionError) as exc:  # deep nesting too
        raise InvalidCursor("The cursor is not valid.", fields={"cursor": ["Not valid."]}) from exc


def after(query: sa.Select, columns: tuple, cursor: str | None) -> sa.Select:
    """Keyset: rows strictly after the cursor in ``(time, id)`` order, in that order."""
    if cursor:
        moment, row_id = decode(cursor)
        query = query.where(sa.tuple_(*columns) > (moment, row_id))
    return query.order_by(*columns)


def cut(rows: list, limit: int, key) -> Page:
    """Turn ``limit + 1`` fetched rows into a page; ``key(row)`` gives its ``(time, id)``."""
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, encode(*key(rows[-1])))

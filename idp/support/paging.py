"""Opaque keyset cursors for the support and audit listings (stable under inserts)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from idp.api_inputs import has_control_characters
from idp.errors import InvalidCursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass
class Page:
    """One page of results and the cursor of the next page (None on the last one)."""

    items: list[Any] = field(default_factory=list)
    next_cursor: str | None = None


def encode_cursor(values: list[str]) -> str:
    """Wrap the sort key of the last row of a page into an opaque cursor."""
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    """Unwrap a cursor made by ``encode_cursor``; anything else is invalid input."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, RecursionError) as exc:  # deep nesting too
        raise InvalidCursor("The cursor is not valid.", fields={"cursor": ["Not valid."]}) from exc
    if not isinstance(values, list) or len(values) != size:
        raise InvalidCursor("The cursor is not valid.", fields={"cursor": ["Not valid."]})
    # A cursor names a row by its stored values, and no stored id, time or address holds
    # a control character; a forged one holding NUL would only reach the database.
    if not all(isinstance(v, str) and not has_control_characters(v) for v in values):
        raise InvalidCursor("The cursor is not valid.", fields={"cursor": ["Not valid."]})
    return values


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """Unwrap a ``[time, id]`` cursor."""
    moment, row_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(moment), row_id
    except ValueError as exc:
        raise InvalidCursor("The cursor is not valid.", fields={"cursor": ["Not valid."]}) from exc


def page_of(rows: list, limit: int, key) -> Page:
    """Cut ``limit + 1`` fetched rows into a page, with a cursor when more rows exist."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, encode_cursor(key(rows[-1])))
    return Page(rows, None)

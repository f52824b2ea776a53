"""How the JSON API reads what clients send: the body's JSON, and the text people type.

``Blueprint`` is flask-smorest's, with a parser that refuses with 400 every body
Python's decoder cannot take as JSON, where webargs lets some through as a 500:
nesting deep enough to exhaust the recursion limit, an integer longer than
Python converts (4,300 digits), and ``NaN``/``Infinity``, which are not JSON.

``Text`` is a string field for what a person types (a name, a ticket, a
reason): trimmed, never blank where it is required, and free of control
characters (NUL, which PostgreSQL cannot store; terminal escapes, which would
reach whoever reads the audit log in a terminal) and of lone surrogates.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import flask_smorest
from marshmallow import ValidationError, fields, validate
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

# Line breaks and tabs are text in a multi-line field; every other control character never is.
_LAYOUT = frozenset("\t\n\r")


def printable_ascii(text: str) -> bool:
    """Whether ``text`` is only printable ASCII, space included (RFC 6749's VSCHAR)."""
    return text.isascii() and text.isprintable()


def has_control_characters(text: str, allowed: frozenset[str] = frozenset()) -> bool:
    """Whether ``text`` holds a control character (NUL too) or a lone surrogate."""
    return any(unicodedata.category(char) in ("Cc", "Cs") and char not in allowed for char in text)


# Invisible bidirectional embeddings, overrides and isolates: no typed name needs one,
# and in a name shown to someone else (a consent screen names both businesses) they
# make its text read in another order than it is stored (CVE-2021-42574's trick).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def unfit_for_a_name(text: str) -> str | None:
    """Why ``text`` cannot be a one-line name (its fault, lower case), or None if it can."""
    if has_control_characters(text):
        return "a control character or invalid text"
    if any(unicodedata.category(c) in ("Zl", "Zp") for c in text):
        return "a line break"
    if not _BIDI_CONTROLS.isdisjoint(text):
        return "an invisible text-direction control"
    return None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def json_body(data: bytes) -> Any:
    """The JSON value of a request body; ``json.JSONDecodeError`` for anything else.

    Python's decoder raises other errors too (RecursionError, ValueError for a
    long integer) and reads ``NaN``; each is a body that is not JSON.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"not UTF-8: {exc.reason}", "(body)", exc.start) from exc
    try:
        return json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError:
        raise
    except RecursionError as exc:
        raise json.JSONDecodeError("nested too deeply", "(body)", 0) from exc
    except ValueError as exc:  # NaN or Infinity; an integer too long to convert
        raise json.JSONDecodeError(str(exc), "(body)", 0) from exc


class JsonBodyParser(FlaskParser):
    """webargs' Flask parser; a body that is no JSON Python can read is a 400, never a 500."""

    def _raw_load_json(self, req) -> Any:
        if not is_json_request(req):
            return core.missing
        return json_body(req.get_data(cache=True))


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's blueprint, reading bodies with ``JsonBodyParser``."""

    ARGUMENTS_PARSER = JsonBodyParser()


class Text(fields.String):
    """Text a person typed: trimmed, ``min_length`` to ``max_length`` characters, no control codes.

    ``multiline`` admits line breaks and tabs (a reason); a name or a ticket is one line.
    """

    def __init__(
        self, *, max_length: int, min_length: int = 1, multiline: bool = False, **kwargs
    ) -> None:
        super().__init__(validate=validate.Length(min=min_length, max=max_length), **kwargs)
        self.multiline = multiline

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if self.multiline:
            if has_control_characters(text, _LAYOUT):
                raise ValidationError("Must not contain control characters or invalid text.")
            return text
        # U+2028/U+2029 end a line wherever the name is shown (a page, a log, an email).
        fault = unfit_for_a_name(text)
        if fault == "a line break":
            raise ValidationError("Must be one line.")
        if fault:
            raise ValidationError(f"Must not contain {fault}.")
        return text

"""A line of a legacy account file: what it must hold, and the reason when it does not.

Only the line itself is read here (UTF-8 JSON, the fields, the address, the
role for the hub, the password hash's form); what importing it changes is
``idp.support.importer``.
"""

from __future__ import annotations

import json

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from idp.accounts.emails import InvalidEmail, parse_email
from idp.accounts.legacy import hash_problem
from idp.api_inputs import unfit_for_a_name
from policies.roles import ROLES_BY_HUB


class LegacyLineSchema(Schema):
    """One legacy account; unknown fields are refused so nothing is silently dropped."""

    class Meta:
        unknown = RAISE

    email = fields.String(required=True, validate=validate.Length(min=1, max=320))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    organization = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True)
    # No legacy hash form is longer than its column; a longer one is not a hash.
    password_hash = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=255)
    )


class Rejected(Exception):
    """The line is not a valid account; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_line(hub: str, line: str | bytes) -> tuple[dict, object]:
    """The account a line of ``hub`` describes and its parsed address; ``Rejected`` if none."""
    if isinstance(line, bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Rejected(f"not valid UTF-8 text (byte {exc.start + 1})") from exc
    else:
        text = line
    if not text.strip():
        raise Rejected("empty line")
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise Rejected(f"not valid JSON ({exc.msg})") from exc
    if not isinstance(raw, dict):
        raise Rejected("not a JSON object")
    try:
        data = LegacyLineSchema().load(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{name}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
            for name, msgs in sorted(exc.normalized_messages().items())
        )
        raise Rejected(problems) from exc
    try:
        address = parse_email(data["email"])
    except InvalidEmail as exc:
        raise Rejected(f"invalid email address: {exc}") from exc
    if data["role"] not in ROLES_BY_HUB[hub]:
        allowed = ", ".join(ROLES_BY_HUB[hub])
        raise Rejected(f"unknown role {data['role']!r} for the {hub} hub ({allowed})")
    hashed = data["password_hash"]
    problem = hash_problem(hashed) if hashed is not None else None
    if problem is not None:
        raise Rejected(f"unsupported password_hash: {problem}")
    data["name"] = data["name"].strip()
    data["organization"] = data["organization"].strip()
    if not data["name"] or not data["organization"]:
        raise Rejected("name and organization must not be blank")
    # NUL above all, which PostgreSQL cannot store; a name is one line wherever it is
    # shown (an invitation's subject names its partner), and reads as it is stored.
    fault = unfit_for_a_name(data["name"]) or unfit_for_a_name(data["organization"])
    if fault:
        raise Rejected(f"name and organization must not contain {fault}")
    return data, address

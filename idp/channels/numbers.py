"""Phone numbers in E.164, validated with ``phonenumbers``."""

from __future__ import annotations

import phonenumbers

from idp.errors import InvalidInput


class InvalidPhoneNumber(InvalidInput):
    """The number is not a valid phone number."""

    code = "invalid_phone_number"


def normalize_number(text: str, region: str | None = None) -> str:
    """The E.164 form of ``text`` (``+`` and digits); ``region`` reads national formats."""
    try:
        parsed = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(
            "Not a phone number; use international format like +14155550123.",
            fields={"phone_number": ["Not a phone number."]},
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(
            "This phone number does not exist in its numbering plan.",
            fields={"phone_number": ["Not a valid number."]},
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def number_search_digits(text: str) -> str:
    """The ASCII digits of a (partial) number typed into a search box; refuse one with none."""
    digits = "".join(str(int(ch)) for ch in text if ch.isdecimal())
    if not digits:
        # Without a digit the search would match every number.
        raise InvalidInput(
            "Search numbers by some of their digits.",
            fields={"number": ["Give at least one digit."]},
        )
    return digits

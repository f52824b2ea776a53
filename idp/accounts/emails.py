"""The one rule that decides whether two email addresses are the same account.

``normalize_email`` is applied on every write and every lookup:

1. surrounding white space is trimmed;
2. the address is put in Unicode NFKC form (full-width and compatibility
   characters become their plain equivalents);
3. the syntax is validated (``email-validator``, no DNS lookups);
4. the domain is IDNA-encoded (``bücher.example`` -> ``xn--bcher-kva.example``);
5. the whole address is case-folded, then put in NFKC form again (case
   folding can leave a letter and a combining mark where the other case has
   one composed character: upper-case ``ΐ`` folds to ``ϊ`` plus an accent).

No provider-specific rewriting (dots or ``+tags`` in Gmail addresses) is done:
those are distinct mailboxes for most providers.

``email_hmac`` names a normalized address in the audit log without writing it
there: a keyed HMAC that only this service (its ``SECRET_KEY``) can compute.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from flask import current_app

from idp.config import keyed_digest, subkey

# Fixed label of the key derived from SECRET_KEY for email_hmac (never used for anything else).
_HMAC_KEY_LABEL = b"idp audit email-hmac v1"


class InvalidEmail(ValueError):
    """The address is not a syntactically valid email address."""


@dataclass(frozen=True)
class EmailAddress:
    """An address as typed for display (``display``) and as compared (``normalized``)."""

    display: str
    normalized: str


def parse_email(raw: str) -> EmailAddress:
    """Validate ``raw`` and return its display and normalized forms."""
    if not isinstance(raw, str):
        raise InvalidEmail("an email address must be a string")
    text = unicodedata.normalize("NFKC", raw.strip())
    if len(text) > 320:
        raise InvalidEmail("the email address is too long")
    try:
        info = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc
    domain = info.ascii_domain or info.domain
    normalized = unicodedata.normalize("NFKC", f"{info.local_part}@{domain}".casefold())
    return EmailAddress(display=info.normalized, normalized=normalized)


def normalize_email(raw: str) -> str:
    """Return the comparison form of ``raw`` (see the module docstring for the rule)."""
    return parse_email(raw).normalized


def comparison_form(raw: object) -> str:
    """``normalize_email(raw)``, or for input that is no address, its trimmed case-folded text.

    For keys that must treat every spelling of one address alike (rate limits,
    failed-login counters) while still accepting whatever a person typed.
    """
    text = raw if isinstance(raw, str) else "" if raw is None else str(raw)
    try:
        return normalize_email(text)
    except InvalidEmail:
        return text.strip().casefold()[:320]


def email_hmac(email_normalized: str) -> str:
    """HMAC-SHA256 (hex) of a normalized address, keyed from the app's ``SECRET_KEY``.

    Equal for every spelling of one address, so audit events can be matched to an
    address an investigator names, while the log itself never holds the address.
    """
    return keyed_digest(subkey(current_app.config, _HMAC_KEY_LABEL), email_normalized)

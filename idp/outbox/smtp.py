"""Email delivery over SMTP to ``IDP_SMTP_URL`` (``smtp://``, ``smtps://``, ``smtp+starttls://``)."""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

from flask import current_app

from idp.outbox.models import OutboxMessage

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}
SMTP_TIMEOUT = 30


class DeliveryDeferred(Exception):  # noqa: N818 (a state, not a failure)
    """The message was not sent and stays pending without counting as a failed attempt.

    ``delay`` (seconds) says when to look again; the worker's default otherwise.
    """

    def __init__(self, reason: str, *, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class PermanentDeliveryError(Exception):
    """The message can never be delivered as it is (e.g. the server refuses the recipient)."""


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to reach the SMTP relay."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse ``smtp[s|+starttls]://[user:pass@]host[:port]``; raise ``ValueError`` otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port  # a port that is no number raises here
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(
            "IDP_SMTP_URL must look like smtp://host:port, smtps:// or smtp+starttls://"
        )
    return SmtpTarget(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


# Control characters (CR, LF, NEL, NUL, ...) and the Unicode line and paragraph
# separators: each ends a header line (Python's email refuses them, so the message
# could never be built) or is not allowed in one (RFC 5322 2.2, 3.2.5).
_NOT_IN_A_HEADER = frozenset({"Cc", "Zl", "Zp"})


def header_text(text: str | None) -> str:
    """``text`` as one header line: what cannot be in a header becomes a space, runs of
    spaces become one. Stored data (a partner's name in a subject) can then neither
    break the message nor start a header of its own (RFC 5322 2.2)."""
    spaced = "".join(
        " " if unicodedata.category(char) in _NOT_IN_A_HEADER else char for char in text or ""
    )
    return " ".join(spaced.split())


def build_email(message: OutboxMessage, sender: str) -> EmailMessage:
    """The RFC 5322 message for an outbox row (plain text, UTF-8)."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.recipient
    email["Subject"] = header_text(message.subject)
    email["Message-ID"] = make_msgid(
        idstring=message.id, domain=sender.rpartition("@")[2].strip(">")
    )
    email.set_content(message.body)
    return email


def _connect(target: SmtpTarget) -> smtplib.SMTP:
    if target.scheme == "smtps":
        return smtplib.SMTP_SSL(
            target.host, target.port, timeout=SMTP_TIMEOUT, context=ssl.create_default_context()
        )
    connection = smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT)
    if target.scheme == "smtp+starttls":
        try:
            connection.starttls(context=ssl.create_default_context())
        except BaseException:
            connection.close()
            raise
    return connection


def _send(target: SmtpTarget, email: EmailMessage) -> None:
    """Hand ``email`` to the server; once it has taken the message, that is the outcome.

    ``smtplib.SMTP`` as a context manager raises when QUIT is answered with
    anything but 221, after the message was accepted: a 5xx there would mark a
    delivered email failed and a 4xx or a dropped connection would send it
    again. The connection is closed whatever happens.
    """
    connection = _connect(target)
    try:
        if target.username:
            connection.login(target.username, target.password or "")
        connection.send_message(email)
        with contextlib.suppress(smtplib.SMTPException, OSError):
            connection.quit()
    finally:
        connection.close()


def deliver_email(message: OutboxMessage) -> None:
    """Send one email over SMTP; without ``IDP_SMTP_URL`` log that it would be sent and defer."""
    url = current_app.config.get("IDP_SMTP_URL")
    if not url:
        # Subject and recipient only: the body carries single-use link tokens.
        log.info(
            "would send email %s to %s: %s (read it with: idp outbox show %s)",
            message.id,
            message.recipient,
            header_text(message.subject),
            message.id,
        )
        raise DeliveryDeferred("IDP_SMTP_URL is not set")
    target = parse_smtp_url(url)
    email = build_email(message, current_app.config["IDP_MAIL_FROM"])
    try:
        _send(target, email)
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentDeliveryError("the SMTP server refused the recipient") from exc
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600 and exc.smtp_code not in (530, 535):
            raise PermanentDeliveryError(f"SMTP {exc.smtp_code}") from exc
        raise

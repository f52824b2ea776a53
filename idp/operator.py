"""What the operator's ``idp`` commands share: their audit actor and their one-line refusals."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager

import click
from marshmallow import ValidationError

from idp.errors import DomainError, InvalidInput
from idp.extensions import db

ACTOR_TYPE = "system"
MAX_OS_USER = 100


def operator_actor(command: str) -> dict[str, str]:
    """The audit ``actor_type``/``actor_id`` of the command (``clients set-hub``, ...)."""
    return {"actor_type": ACTOR_TYPE, "actor_id": command}


def os_user() -> str:
    """Who runs the command, as the operating system tells: the login, and who used sudo.

    A record for an investigator, not a proof (the login comes from the
    environment first, as ``getpass`` reads it). Without any name for the
    process's user (a container's bare uid) it is ``uid N``.
    """
    try:
        login = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no name for the uid (KeyError before 3.13)
        login = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    sudo = os.environ.get("SUDO_USER")
    named = f"{sudo} (sudo as {login})" if sudo and sudo != login else login
    return named[:MAX_OS_USER]


def one_line(exc: DomainError) -> str:
    """The refusal and the values it names, on one line."""
    named = "; ".join(
        f"{field}: {', '.join(map(str, values))}" for field, values in (exc.fields or {}).items()
    )
    text = f"{exc.detail} ({named})" if named else exc.detail
    return " ".join(text.split())


@contextmanager
def refusals() -> Iterator[None]:
    """Turn a refused input into a one-line error (exit status 1) with nothing written."""
    try:
        yield
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(one_line(exc)) from None


@contextmanager
def kept_for_output() -> Iterator[None]:
    """Keep the rows the command commits as written, to print them without the database.

    The session would reload them after the commit: a database lost at that
    moment would take with it a secret just stored, which nobody can read again.
    """
    session = db.session()
    kept, session.expire_on_commit = session.expire_on_commit, False
    try:
        yield
    finally:
        session.expire_on_commit = kept


def ticket_and_reason(ticket: str, reason: str) -> tuple[str, str]:
    """The ticket and reason of an audited command, held to the support actions' rules."""
    from idp.support.schemas import SupportActionIn

    try:
        loaded = SupportActionIn().load({"ticket": ticket, "reason": reason})
    except ValidationError as exc:
        raise InvalidInput(fields=exc.messages) from None
    return loaded["ticket"], loaded["reason"]

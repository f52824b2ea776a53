"""Server-rendered pages: templates and static files, and what many pages share."""

from __future__ import annotations

from flask import render_template, url_for

from idp.accounts.service import hub_name


def message_page(title: str, message: str, status: int = 200, links: list[dict] | None = None):
    """A page that tells a person one thing, with the ways on (``{"href", "text"}``)."""
    return render_template("message.html", title=title, message=message, links=links), status


def sign_in_link(hub: str, verb: str = "Sign in") -> dict:
    """A link to the login page of ``hub``, for the pages that end a journey."""
    return {"href": url_for("login.login", hub=hub), "text": f"{verb} to the {hub_name(hub)}"}

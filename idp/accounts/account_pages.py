"""Pages of the signed-in person's own account: the password, the browsers signed in."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from idp.accounts import password_change, sessions
from idp.errors import InvalidInput
from idp.login.session import current_user
from idp.ratelimits import rate_limited, succeeded

bp = Blueprint("account_pages", __name__)

TEMPLATE = "accounts/change_password.html"
SESSIONS_TEMPLATE = "accounts/sessions.html"


@bp.route("/account/password", methods=["GET", "POST"])
# The current password is checked, as at /login.
@rate_limited("IDP_LOGIN_RATE_LIMIT", given_back_when=succeeded)
def change_password():
    """The current password and a new one, typed twice; this browser stays signed in."""
    user = current_user()
    if user is None:
        return redirect(url_for("login.login", next=url_for("account_pages.change_password")))
    if request.method == "GET":
        return render_template(TEMPLATE, user=user, errors={})
    new = request.form.get("password", "")
    if new != request.form.get("password_confirm", ""):
        errors = {"password_confirm": ["The two new passwords differ."]}
        return render_template(TEMPLATE, user=user, errors=errors), 422
    try:
        password_change.change_password(
            user, request.form.get("current_password", ""), new, address=request.remote_addr or ""
        )
    except InvalidInput as exc:
        return render_template(TEMPLATE, user=user, errors=exc.fields or {}), 422
    except password_change.CurrentPasswordRefused as exc:
        page = render_template(TEMPLATE, user=user, errors=exc.fields)
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return page, exc.status, headers
    return render_template(
        "message.html",
        title="Password changed",
        message="Your new password is set. Every other browser and app using the old one "
        "is signed out; this browser stays signed in.",
        link={"href": url_for("login.signed_in"), "text": "Back to your account"},
    )


@bp.route("/account/sessions", methods=["GET", "POST"])
# The password is checked, as at /login.
@rate_limited("IDP_LOGIN_RATE_LIMIT", given_back_when=succeeded)
def sessions_page():
    """The open logins of the account; the password signs one other browser, or all, out."""
    user = current_user()
    if user is None:
        return redirect(url_for("login.login", next=url_for("account_pages.sessions_page")))
    if request.method == "GET":
        return _sessions(user, {})
    which = request.form.get("login", "")
    try:
        sessions.end_other_logins(
            user, which, request.form.get("current_password", ""), address=request.remote_addr or ""
        )
    except InvalidInput as exc:
        return _sessions(user, exc.fields or {}, 422)
    except password_change.CurrentPasswordRefused as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return _sessions(user, exc.fields, exc.status, headers)
    ended = (
        "Every other browser is signed out"
        if which == sessions.OTHERS
        else "That browser is signed out"
    )
    return render_template(
        "message.html",
        title="Signed out elsewhere",
        message=f"{ended}, with the apps it signed in to; this browser stays signed in.",
        link={"href": url_for("account_pages.sessions_page"), "text": "Your signed-in browsers"},
    )


def _sessions(user, errors: dict, status: int = 200, headers: dict | None = None):
    page = render_template(
        SESSIONS_TEMPLATE,
        user=user,
        logins=sessions.open_logins(user),
        unlisted_apps=sessions.unlisted_apps(user),
        others=sessions.OTHERS,
        errors=errors,
    )
    return page, status, headers or {}


@bp.route("/.well-known/change-password")
def well_known_change_password():
    """Where password managers send a person to change a password (W3C's well-known URL)."""
    return redirect(url_for("account_pages.change_password"))

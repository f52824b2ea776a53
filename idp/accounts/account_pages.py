"""Pages of the signed-in person's own account: changing the password."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from idp.accounts import password_change
from idp.errors import InvalidInput
from idp.login.session import current_user
from idp.ratelimits import rate_limited, succeeded

bp = Blueprint("account_pages", __name__)

TEMPLATE = "accounts/change_password.html"


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


@bp.route("/.well-known/change-password")
def well_known_change_password():
    """Where password managers send a person to change a password (W3C's well-known URL)."""
    return redirect(url_for("account_pages.change_password"))

"""Server-rendered pages: sign-up, its verification link, and password reset."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from idp.accounts import reset, service
from idp.accounts.limits import account_rate_limit
from idp.errors import DomainError, InvalidInput
from idp.login.service import TooManyAttempts
from idp.ratelimits import rate_limited, succeeded
from idp.web import message_page, sign_in_link

bp = Blueprint("accounts_pages", __name__)


@bp.route("/signup", methods=["GET", "POST"])
@account_rate_limit("signup")
def signup():
    """The sign-up form; the same answer whether or not the address is taken."""
    continue_url = request.values.get("continue")
    if not service.is_safe_continue_url(continue_url):
        continue_url = None
    if request.method == "GET":
        return render_template(
            "accounts/signup.html", form={}, errors={}, continue_url=continue_url
        )
    form = request.form
    try:
        service.start_signup(
            form.get("email", ""),
            form.get("password", ""),
            form.get("business_name", ""),
            continue_url=continue_url,
        )
    except InvalidInput as exc:
        values = {"email": form.get("email", ""), "business_name": form.get("business_name", "")}
        return render_template(
            "accounts/signup.html", form=values, errors=exc.fields or {}, continue_url=continue_url
        ), 422
    return message_page(
        "Check your inbox",
        "We sent a message to this address with the next step. "
        "The account is created when you follow the link in it.",
    )


@bp.route("/signup/verify", methods=["GET", "POST"])
# The password chosen at sign-up is checked, as at /login.
@rate_limited("IDP_LOGIN_RATE_LIMIT", given_back_when=succeeded)
def signup_verify():
    """Confirm a sign-up link with its password; a button, not the GET, creates the account.

    Mail scanners follow the GET. The link proves the mailbox, the password the
    person who signed up: a link from a stranger's sign-up with this address
    cannot create an account that opens with the stranger's password.
    """
    token = request.values.get("token")
    try:
        pending = service.pending_signup(token)
        if request.method == "GET":
            return _verify_page(pending, token)
        try:
            result = service.complete_signup(
                token, request.form.get("password", ""), address=request.remote_addr or ""
            )
        except InvalidInput as exc:
            return _verify_page(pending, token, exc.fields, exc.status)
        except TooManyAttempts as exc:
            retry_after = exc.retry_after
            page, status = _verify_page(pending, token, {"password": [exc.detail]}, exc.status)
            return page, status, {"Retry-After": str(retry_after)}
    except DomainError as exc:
        # A used link is opened again (the email, the back button): lead on either way.
        again = {"href": url_for(".signup"), "text": "Sign up again"}
        return message_page(exc.title, exc.detail, exc.status, [sign_in_link("client"), again])
    service.log_in_after_signup(result.user)
    if result.continue_url:
        return redirect(result.continue_url, code=303)
    return message_page(
        "Your account is ready",
        f"{result.organization.name} has a Client Hub account for {result.user.email}; "
        "you are logged in.",
        links=[{"href": url_for("login.signed_in"), "text": "Go to your account"}],
    )


def _verify_page(pending: dict, token: str | None, errors: dict | None = None, status: int = 200):
    return render_template(
        "accounts/signup_verify.html", pending=pending, token=token, errors=errors or {}
    ), status


@bp.route("/password-reset", methods=["GET", "POST"])
@account_rate_limit("password_reset")
def password_reset():
    """Ask for a reset link; the answer never says whether the address has an account."""
    if request.method == "GET":
        return render_template("accounts/password_reset.html", form={}, errors={})
    try:
        reset.request_password_reset(request.form.get("email", ""))
    except InvalidInput as exc:
        form = {"email": request.form.get("email", "")}
        return render_template(
            "accounts/password_reset.html", form=form, errors=exc.fields or {}
        ), 422
    return message_page(
        "Check your inbox",
        "If an account uses this address, we sent it a link to choose a new password.",
    )


@bp.route("/password-reset/confirm", methods=["GET", "POST"])
def password_reset_confirm():
    """Choose a new password from an emailed link."""
    token = request.values.get("token")
    account = reset.reset_link_account(token)
    if account is None:
        return _invalid_reset_link()
    if request.method == "GET":
        return _reset_confirm_page(account, token)
    password = request.form.get("password", "")
    if password != request.form.get("password_confirm", ""):
        return _reset_confirm_page(
            account, token, {"password_confirm": ["The two passwords differ."]}, 422
        )
    try:
        user = reset.complete_password_reset(token, password)
    except InvalidInput as exc:
        return _reset_confirm_page(account, token, exc.fields or {}, 422)
    except service.LinkInvalid:
        return _invalid_reset_link()
    return message_page(
        "Password changed",
        "Your new password is set, and every session and app using the old one is signed out.",
        links=[sign_in_link(user.hub)],
    )


def _reset_confirm_page(account, token: str | None, errors: dict | None = None, status=200):
    """The new-password form of a reset link, naming its account for password managers."""
    return render_template(
        "accounts/password_reset_confirm.html",
        username=account.email,
        token=token,
        errors=errors or {},
    ), status


def _invalid_reset_link():
    return message_page(
        service.LinkInvalid.title,
        "Ask for a new password-reset link.",
        400,
        links=[{"href": url_for(".password_reset"), "text": "Ask for a new link"}],
    )

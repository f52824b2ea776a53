"""The login page, the organization picker and logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request, url_for

from idp.errors import InvalidInput
from idp.extensions import db
from idp.login.second_step import forget_second_step, second_step_user
from idp.login.service import attempt_login
from idp.login.session import current_user
from idp.mfa.recovery import remaining as recovery_codes_left
from idp.mfa.service import SecondStepRefused, TwoStepStateConflict, complete_sign_in
from idp.oauth.authorize import AuthorizationRequest, to_login
from idp.oauth.hub import HUB_TITLES, choose, organizations_for, wrong_hub_page
from idp.oauth.logout import sign_out
from idp.ratelimits import rate_limited, succeeded
from idp.web import message_page

bp = Blueprint("login", __name__)


def safe_next(value: str | None) -> str | None:
    """A relative path on this host, or None (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ord(ch) < 0x20 or ch == "\\" for ch in value):
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None


def _url_or_path(endpoint: str, path: str, **values) -> str:
    try:
        return url_for(endpoint, **values)
    except Exception:  # noqa: BLE001 - the page belongs to another package that may be absent
        return path


def _signup_url(hub: str | None, authz: AuthorizationRequest | None) -> str | None:
    """Client Hub sign-up; for a partner's request, the one that records the partner."""
    if hub not in (None, "client"):
        return None
    client = authz.client if authz else None
    if client is not None and client.kind == "partner":
        return _url_or_path("consent_pages.signup", "/signup", request_id=authz.id)
    return _url_or_path("accounts_pages.signup", "/signup")


def _render(
    hub: str | None,
    authz: AuthorizationRequest | None,
    status: int = 200,
    template: str = "login/login.html",
    **extra,
):
    client = authz.client if authz else None
    hub_title = HUB_TITLES.get(hub or "")
    extra.setdefault("action", request.full_path.rstrip("?"))
    body = render_template(
        template,
        hub_title=hub_title,
        client_name=client.name if client is not None and client.kind != "hub" else None,
        login_url=_login_url(),
        reset_url=_url_or_path("accounts_pages.password_reset", "/password-reset"),
        signup_url=_signup_url(hub, authz),
        **extra,
    )
    return Response(body, status=status, mimetype="text/html")


def _login_url(endpoint: str = "login.login") -> str:
    """The page ``endpoint`` for this page's request (its ``request_id``, ``hub``, ``next``)."""
    query = request.query_string.decode()
    return url_for(endpoint) + (f"?{query}" if query else "")


def _request_of_page() -> tuple[AuthorizationRequest | None, str | None, str | None]:
    """The authorization request, hub and next path a login page was opened for."""
    authz = AuthorizationRequest.load(request.args.get("request_id"))
    hub = authz.hub() if authz else request.args.get("hub")
    hub = hub if hub in HUB_TITLES else None
    return authz, hub, safe_next(request.args.get("next"))


def _signed_in(authz: AuthorizationRequest | None, target: str | None) -> str:
    """Where a completed login goes: its authorization request, else its ``next`` path."""
    if authz is not None:
        # The password was typed: only now may a request that asked for it be answered.
        authz.force_login = False
        authz.save()
        return authz.resume_url
    return target or url_for("login.signed_in")


@bp.route("/login", methods=["GET", "POST"])
@rate_limited("IDP_LOGIN_RATE_LIMIT", given_back_when=succeeded)
def login():
    """Sign in for an authorization request (``request_id``) or a hub page (``hub``, ``next``)."""
    authz, hub, target = _request_of_page()
    if request.method == "GET":
        user = current_user()
        if user is not None and authz is not None and not authz.force_login:
            return redirect(authz.resume_url)
        if user is not None and authz is None and (hub is None or user.hub == hub):
            return redirect(target or url_for("login.signed_in"))
        hint = authz.params.get("login_hint") if authz else None
        return _render(hub, authz, email=hint)
    outcome = attempt_login(
        request.form.get("email", ""),
        request.form.get("password", ""),
        hub,
        request.remote_addr or "",
    )
    if outcome.wrong_hub:
        return wrong_hub_page(outcome.user, hub, authz.id if authz is not None else None)
    if outcome.error:
        response = _render(
            hub, authz, outcome.status, error=outcome.error, email=request.form.get("email")
        )
        if outcome.retry_after:
            response.headers["Retry-After"] = str(outcome.retry_after)
        return response
    if outcome.second_step:
        return redirect(_login_url("login.second_step"))
    return redirect(_signed_in(authz, target))


SECOND_STEP_TEMPLATE = "login/second_step.html"


@bp.route("/login/two-step", methods=["GET", "POST"])
@rate_limited("IDP_LOGIN_RATE_LIMIT", given_back_when=succeeded)
def second_step():
    """The code from the authenticator app (or a recovery code), after a password accepted.

    Only a browser whose password was accepted in the last minutes gets here
    (``second_step_user``); any other starts at the login page again.
    """
    authz, hub, target = _request_of_page()
    user = second_step_user()
    if user is None:
        if request.method == "GET":
            return redirect(_login_url())
        error = "The sign-in took too long or was already finished. Sign in again."
        return _render(hub, authz, 401, error=error, action=_login_url())
    if request.method == "GET":
        return _render(hub, authz, template=SECOND_STEP_TEMPLATE, errors={})
    try:
        method = complete_sign_in(
            user,
            code=request.form.get("code", ""),
            recovery_code=request.form.get("recovery_code", ""),
            address=request.remote_addr or "",
        )
    except InvalidInput as exc:
        return _render(hub, authz, 422, template=SECOND_STEP_TEMPLATE, errors=exc.fields or {})
    except SecondStepRefused as exc:
        response = _render(hub, authz, exc.status, template=SECOND_STEP_TEMPLATE, errors=exc.fields)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except TwoStepStateConflict:  # support removed the second step meanwhile
        forget_second_step()
        return redirect(_login_url())
    destination = _signed_in(authz, target)
    if method == "recovery_code":
        return render_template(
            "login/recovery_code_used.html",
            left=recovery_codes_left(user.id),
            destination=destination,
        )
    return redirect(destination)


@bp.route("/login/organization/<request_id>", methods=["GET", "POST"])
def choose_organization(request_id: str):
    """The partner picker: the last one used first; the choice goes into the token.

    A request that asked for the password again is not answered from here.
    """
    authz = AuthorizationRequest.load(request_id)
    user = current_user()
    if authz is None:
        return redirect(url_for("login.login"))
    if user is None or authz.force_login:
        return to_login(authz)
    organizations = organizations_for(user)
    noun = "partner" if user.hub == "partner" else "organization"
    error = None
    if request.method == "POST":
        chosen = request.form.get("organization_id")
        if chosen in {org.id for org in organizations}:
            return choose(authz, user, chosen)
        # A tampered form, or a membership ended since the page was shown: the same words.
        error = f"You are not a member of that {noun}."
    body = render_template(
        "login/choose_organization.html",
        user=user,
        organizations=organizations,
        hub_title=HUB_TITLES[user.hub],
        noun=noun,
        error=error,
        request_id=authz.id,
    )
    return Response(body, status=400 if error else 200, mimetype="text/html")


@bp.route("/login/done")
def signed_in():
    """Where a login without a destination lands."""
    user = current_user()
    if user is None:
        return redirect(url_for("login.login"))
    return render_template("login/signed_in.html", user=user)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """End this browser's session and its login's tokens (POST with CSRF; GET asks first).

    A ``request_id`` of this browser's pending authorization request leads to its
    login page, so that another account answers it.
    """
    if request.method == "GET":
        return render_template(
            "oauth/logout_confirm.html", params={}, action=url_for("login.logout")
        )
    # "Use another account" on a page of a pending authorization request: that request
    # outlives the sign-out, for whoever signs in next (without the old account's hint).
    authz = AuthorizationRequest.load(request.form.get("request_id"))
    sign_out()
    db.session.commit()
    if authz is not None:
        authz.params.pop("login_hint", None)
        authz.save()
        return to_login(authz)
    again = {"href": url_for("login.login"), "text": "Sign in again"}
    return message_page("Signed out", "You are signed out.", links=[again])

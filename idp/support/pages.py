"""The support console (``/support/...``) and the ``/verify-email`` link target: pages."""

from __future__ import annotations

import functools
import json

from flask import (
    Blueprint,
    flash,
    g,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from marshmallow import ValidationError

from idp.accounts.models import User
from idp.accounts.service import HUB_NAMES, hub_name
from idp.audit.actions import KNOWN_ACTIONS
from idp.audit.query import find_events
from idp.audit.schemas import AuditLogPageArgs
from idp.errors import Conflict, DomainError, Forbidden, InvalidInput
from idp.login.session import current_user
from idp.mfa.service import is_enabled as two_step_on
from idp.support import conflicts, controls, service
from idp.support.access import enforce_support, record_access_denied
from idp.support.schemas import EmailReassignmentIn, SupportActionIn
from idp.support.verification import confirm_email, pending_token
from idp.web import message_page, sign_in_link
from policies.actor import Actor
from policies.permissions import Permission
from policies.support import can_use_support_tool

blp = Blueprint("support", __name__)

CONTROLS = {
    "disable": controls.disable_account,
    "enable": controls.enable_account,
    "password_reset": controls.trigger_password_reset,
    "end_sessions": controls.end_sessions,
    "resend_verification": controls.resend_verification,
    "two_step_reset": controls.reset_two_step,
}
# What the agent reads once a control is done ({email}: the account's address).
CONTROL_DONE = {
    "disable": "The account is disabled and signed out everywhere.",
    "enable": "The account is enabled; its owner can log in again.",
    "password_reset": "A password-reset link is on its way to {email}.",
    "end_sessions": "The account is signed out everywhere.",
    "resend_verification": "A new verification link is on its way to {email}.",
    "two_step_reset": "Two-step sign-in is removed and the account is signed out everywhere; "
    "{email} is told.",
}
# The labels of the console's form fields, to name them in what to fix.
FIELD_LABELS = {
    "email": "New email address",
    "ticket": "Ticket",
    "reason": "Reason",
    "action": "Action",
}
# The ids of each form's fields on the account page (the two forms share names).
REASSIGN_FIELDS = {"email": "email", "ticket": "ticket", "reason": "reason"}
CONTROL_FIELDS = {"action": "action", "ticket": "control-ticket", "reason": "control-reason"}
# The audit log's filters, and their names on the page.
AUDIT_FILTER_LABELS = {
    "actor": "Actor",
    "target": "Target",
    "action": "Action",
    "since": "From date",
    "until": "To date",
    "cursor": "Page link",
}


def signed_in_user() -> User | None:
    """The person logged in to this browser, if any."""
    return current_user()


def actor_for(user: User) -> Actor:
    """The policy actor of a logged-in person, acting in their (first) organization."""
    membership = user.memberships[0] if user.memberships else None
    return Actor(
        hub=user.hub,
        organization_id=membership.organization_id if membership else None,
        roles=frozenset(m.role for m in user.memberships),
        user_id=user.id,
    )


def console_page(view):
    """Pages for support staff: others log in first (through the support login)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user = signed_in_user()
        if user is None:
            back = request.full_path.rstrip("?")
            return redirect(url_for("login.login", hub="support", next=back))
        actor = actor_for(user)
        if user.hub != "support":
            refusal = "The support console is for support staff only."
            record_access_denied(actor, refusal, user_id=kwargs.get("user_id"))
            raise Forbidden(refusal)
        g.console_user = user
        g.actor = actor
        return view(*args, **kwargs)

    return wrapper


def _account_page(found: User, status: int = 200, **context):
    # What to fix in each form (a field's id -> the reason): nothing until one is refused.
    context.setdefault("errors", {})
    context.setdefault("control_errors", {})
    return _render(
        "account.html",
        status=status,
        account=found,
        conflict=service.open_conflict_of(found),
        held_address=service.has_held_address(found),
        two_step_on=two_step_on(found),
        resets_two_step=bool(
            can_use_support_tool(g.actor, Permission.SUPPORT_ACCOUNTS_RESET_TWO_STEP)
        ),
        **context,
    )


def _render(template: str, status: int = 200, **context):
    context.setdefault("messages", get_flashed_messages(with_categories=True))
    reads_audit = bool(can_use_support_tool(g.actor, Permission.AUDIT_READ))
    return render_template(
        f"support/{template}", user=g.console_user, reads_audit=reads_audit, **context
    ), status


@blp.get("/support/")
@console_page
def search():
    """Search accounts by address, address prefix (ending in ``*``) or id."""
    text = request.args.get("q", "").strip()
    cursor = request.args.get("cursor") or None
    page, error = None, None
    if text:
        if text.startswith("usr_"):
            query = service.AccountSearch(user_id=text, cursor=cursor)
        elif text.endswith("*"):
            query = service.AccountSearch(email_prefix=text.rstrip("*"), cursor=cursor)
        else:
            query = service.AccountSearch(email=text, cursor=cursor)
        try:
            page = service.search_accounts(g.actor, query)
        except DomainError as exc:
            error = _first_message(exc)
    return _render("search.html", q=text, page=page, error=error, hubs=HUB_NAMES)


@blp.get("/support/accounts/<user_id>")
@console_page
def account(user_id: str):
    """One account, with the email reassignment form and the account controls."""
    found = service.get_account(g.actor, user_id)
    return _account_page(found)


@blp.post("/support/accounts/<user_id>/email")
@console_page
def reassign_email(user_id: str):
    """Handle the reassignment form: the same service and rules as the API."""
    form = {k: request.form.get(k, "") for k in ("email", "ticket", "reason")}
    try:
        service.reassign_email(g.actor, user_id, **EmailReassignmentIn().load(form))
    except (DomainError, ValidationError) as exc:
        return _refused(user_id, exc, form=form, errors=_reasons(exc, REASSIGN_FIELDS, "email"))
    flash(f"Email changed to {form['email'].strip()}; a verification link is on its way.", "ok")
    return redirect(url_for("support.account", user_id=user_id), 303)


@blp.post("/support/accounts/<user_id>/controls")
@console_page
def account_control(user_id: str):
    """Handle the account controls form (disable, enable, reset link, end sessions)."""
    form = {k: request.form.get(k, "") for k in ("action", "ticket", "reason")}
    action = CONTROLS.get(form["action"])
    try:
        if action is None:
            raise ValidationError({"action": ["Choose an action."]})
        fields = SupportActionIn().load({k: form[k] for k in ("ticket", "reason")})
        found = action(g.actor, user_id, **fields)
    except (DomainError, ValidationError) as exc:
        errors = _reasons(exc, CONTROL_FIELDS, "action")
        return _refused(user_id, exc, control_form=form, control_errors=errors)
    flash(CONTROL_DONE[form["action"]].format(email=found.email), "ok")
    return redirect(url_for("support.account", user_id=user_id), 303)


def _refused(user_id: str, exc: Exception, **context):
    """The account page again, with the refused form as typed and what to fix."""
    found = service.get_account(g.actor, user_id)
    return _account_page(found, getattr(exc, "status", 422), **context)


@blp.get("/support/conflicts")
@console_page
def conflict_queue():
    """The open email conflicts, each with both sides and a way to resolve it."""
    page = conflicts.list_conflicts(
        g.actor, state="open", limit=200, cursor=request.args.get("cursor") or None
    )
    return _render("conflicts.html", page=page, hubs=HUB_NAMES)


@blp.get("/support/audit")
@console_page
def audit_log():
    """The audit log for support admins: filtered, newest first, a page at a time."""
    permission = Permission.AUDIT_READ
    enforce_support(g.actor, can_use_support_tool(g.actor, permission), permission)
    typed = {name: request.args.get(name, "") for name in AUDIT_FILTER_LABELS}
    page, error = None, None
    try:
        wanted = AuditLogPageArgs().load(typed)
        page = find_events(wanted["where"], cursor=wanted["cursor"])
    except (DomainError, ValidationError) as exc:
        error = _first_message(exc, AUDIT_FILTER_LABELS)
    filters = {name: value for name, value in typed.items() if value and name != "cursor"}
    return _render(
        "audit.html",
        status=422 if error else 200,
        form=typed,
        filters=filters,
        actions=KNOWN_ACTIONS,
        page=page,
        error=error,
        as_json=_as_json,
    )


def _as_json(value) -> str:
    """An event's ``before``/``after`` as readable JSON (the page escapes it)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@blp.get("/verify-email")
def verify_email_form():
    """Show a confirm button (a GET never uses the link, so mail scanners cannot)."""
    token = request.args.get("token", "")
    try:
        row = pending_token(token)
    except DomainError as exc:
        return render_template("message.html", title=exc.title, message=exc.detail), 400
    return render_template("support/verify_email.html", token=token, email=row.user.email)


@blp.post("/verify-email")
def verify_email():
    """Use the link: the address is verified and a held account becomes active."""
    try:
        user = confirm_email(request.form.get("token", ""))
    except DomainError as exc:
        return render_template("message.html", title=exc.title, message=exc.detail), 400
    return message_page(
        "Email address confirmed",
        f"{user.email} is confirmed. You can log in to the {hub_name(user.hub)}.",
        links=[sign_in_link(user.hub, "Log in")],
    )


def _problems(exc: Exception) -> dict[str, str]:
    """The first problem of each field ``exc`` names (none for a refusal of no one field)."""
    if isinstance(exc, ValidationError):
        messages = exc.normalized_messages()
    elif isinstance(exc, DomainError) and exc.fields:
        messages = exc.fields
    else:
        return {}
    return {name: p[0] if isinstance(p, list) else str(p) for name, p in messages.items()}


def _first_message(exc: Exception, labels: dict | None = None) -> str:
    """The first problem of ``exc``, naming its field by ``labels`` (the form's own words)."""
    labels = labels or {}
    problems = _problems(exc)
    if problems:
        name = min(problems)
        return f"{labels.get(name, name)}: {problems[name]}"
    return getattr(exc, "detail", str(exc))


def _reasons(exc: Exception, ids: dict[str, str], concerns: str) -> dict[str, str]:
    """What to fix in a refused account form, by the id of the field each reason is about.

    In the form's order, each naming its field by its label (the page announces them
    together too). A refusal about no one field is about ``concerns`` (the address
    taken, an action the account's state does not allow) when it is one of the input;
    any other (not allowed) is about the form as a whole: the empty id.
    """
    problems = _problems(exc)
    if not problems:
        about = ids[concerns] if isinstance(exc, (Conflict, InvalidInput)) else ""
        return {about: getattr(exc, "detail", None) or str(exc)}
    order = list(ids)
    reasons: dict[str, str] = {}
    for name in sorted(problems, key=lambda n: order.index(n) if n in ids else len(order)):
        text = f"{FIELD_LABELS.get(name, name)}: {problems[name]}"
        key = ids.get(name, "")
        reasons[key] = f"{reasons[key]} {text}" if key in reasons else text
    return reasons

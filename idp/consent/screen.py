"""The consent screen: the authorization step of partner clients in the OAuth server.

The OAuth server validates the authorization request (client, exactly
registered redirect URI, PKCE) and sends people who are not logged in to the
Client Hub login first. This step shows what the partner asks and which
numbers to share (GET, from the authorization endpoint), and applies the
person's decision (POST to ``consent_pages.decide``, CSRF-protected), answering
the partner with a code or ``access_denied``.
"""

from __future__ import annotations

from flask import Response, render_template, request, url_for

from idp.consent import service
from idp.consent.events import audit
from idp.consent.web import actor_for_user
from idp.errors import InvalidInput
from idp.extensions import db
from idp.oauth.authorize import (
    AUTHORIZATION_HANDLERS,
    deny_authorization,
    interaction_required,
    issue_authorization_response,
)
from idp.oauth.issuance import TOKEN_RESPONSE_EXTRAS
from idp.orgs.models import Organization
from policies.consent import (
    DEFAULT_CONSENT_SCOPE,
    can_approve_consent,
    consent_scopes,
    describe_scopes,
)


def requested_consent_scope(authz_request) -> str:
    """The consent scopes the partner asked for (what the client grants, not the token's scope).

    A request without ``scope`` asks for what a consent link without one asks
    for (RFC 6749 section 3.3: the server's pre-defined default).
    """
    asked = authz_request.params.get("scope")
    return " ".join(consent_scopes(DEFAULT_CONSENT_SCOPE if asked is None else asked))


def show(authz_request) -> Response:
    """Render the consent screen for the logged-in person (``consent_required`` if silent)."""
    if authz_request.silent:
        return interaction_required(
            authz_request, "consent_required", "The client must choose what to share."
        )
    return _render(authz_request, None)


def decide(authz_request) -> Response:
    """Apply the person's approval (the ticked numbers) or denial and answer the partner."""
    client = authz_request.client
    user = authz_request.user
    actor = actor_for_user(user)
    scope = requested_consent_scope(authz_request)
    if request.form.get("decision") != "approve" or not can_approve_consent(actor) or not scope:
        # No grant exists to show it, so the decision itself goes on record.
        audit(
            "consent.denied",
            actor,
            target_type="oauth_client",
            target_id=client.client_id,
            organization_id=actor.organization_id,
            after={"partner_id": client.organization_id, "scope": scope},
        )
        db.session.commit()
        return deny_authorization(authz_request, "The client did not approve the request.")
    try:
        grant = service.stage_approval(
            actor,
            partner_id=client.organization_id,
            oauth_client_id=client.client_id,
            scope=scope,
            channel_ids=request.form.getlist("channels"),
        )
    except InvalidInput as exc:
        return _render(authz_request, exc.detail)
    except service.GrantChanged:
        # Another approval of the same grant (a second click, another tab) won the
        # race: show the grant as it is now and let the person decide again.
        return _render(
            authz_request,
            "Your numbers with this partner were changed at the same moment, perhaps in "
            "another window. Check the numbers below and allow again.",
            status=409,
        )
    # Commits the grant together with the code, or neither.
    return issue_authorization_response(
        authz_request, user, actor.organization_id, context={"grant_id": grant.id}
    )


def _render(authz_request, error: str | None, status: int = 422) -> Response:
    client = authz_request.client
    actor = actor_for_user(authz_request.user)
    decision = can_approve_consent(actor)
    scope = requested_consent_scope(authz_request)
    partner = db.session.get(Organization, client.organization_id)
    context = {
        "partner_name": partner.name if partner is not None else client.name,
        "client_name": None,
        "refusal": None,
        "scope_words": describe_scopes(scope),
        "channels": [],
        "granted": set(),
        "error": error,
        "action": url_for("consent_pages.decide", request_id=authz_request.id),
        "signed_in_as": authz_request.user.email,
        "request_id": authz_request.id,
    }
    if not decision:
        context["refusal"] = f"You cannot approve this: {decision.reason}."
    elif not scope:
        context["refusal"] = "This request asks for nothing a Client Hub account can grant."
    else:
        grant = service.current_grant(client.organization_id, actor.organization_id)
        context["client_name"] = db.session.get(Organization, actor.organization_id).name
        context["channels"] = service.client_channels(actor.organization_id)
        context["granted"] = set(grant.channel_ids) if grant else set()
    status = status if error else (403 if context["refusal"] else 200)
    return Response(render_template("consent/authorize.html", **context), status=status)


def grant_token_extra(code) -> dict:
    """``grant`` in the token response of a code issued by a consent approval."""
    return service.grant_for_token_response(getattr(code, "context", None))


def register() -> None:
    """Plug the consent screen and the token-response ``grant`` into the OAuth server."""
    AUTHORIZATION_HANDLERS["partner"] = show
    if grant_token_extra not in TOKEN_RESPONSE_EXTRAS:
        TOKEN_RESPONSE_EXTRAS.append(grant_token_extra)

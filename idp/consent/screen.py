"""The consent screen: the authorization step of partner clients in the OAuth server.

The OAuth server resolves and validates the authorization request (client,
exactly registered redirect URI, PKCE) and sends people who are not logged in
to the Client Hub login or sign-up first; this step shows what the partner asks
and which numbers to share, then answers the partner with a code or a denial.
"""

from __future__ import annotations

from flask import Response, render_template, request

from idp.consent import service
from idp.consent.web import actor_for_user
from idp.errors import InvalidInput
from idp.extensions import db
from idp.orgs.models import Organization
from policies.consent import can_approve_consent, consent_scopes, describe_scopes


def consent_step(authz_request) -> Response:
    """Show the consent screen (GET) or apply the person's decision (POST)."""
    from idp.oauth.authorize import deny_authorization, issue_authorization_response

    client = authz_request.client
    user = authz_request.user
    actor = actor_for_user(user)
    decision = can_approve_consent(actor)
    scope = " ".join(consent_scopes(authz_request.scope))
    error = None
    if request.method == "POST":
        if request.form.get("decision") != "approve" or not decision:
            return deny_authorization(authz_request)
        try:
            grant = service.approve_consent(
                actor,
                partner_id=client.organization_id,
                oauth_client_id=client.client_id,
                scope=scope,
                channel_ids=request.form.getlist("channels"),
            )
        except InvalidInput as exc:
            error = exc.detail
        else:
            return issue_authorization_response(
                authz_request, user, actor.organization_id, context={"grant_id": grant.id}
            )
    return _render(client, actor, decision, scope, error)


def _render(client, actor, decision, scope: str, error: str | None) -> Response:
    partner = db.session.get(Organization, client.organization_id)
    partner_name = partner.name if partner is not None else client.name
    context = {
        "partner_name": partner_name,
        "client_name": None,
        "refusal": None if decision else f"You cannot approve this: {decision.reason}.",
        "scope_words": describe_scopes(scope),
        "channels": [],
        "granted": set(),
        "error": error,
    }
    if decision:
        organization = db.session.get(Organization, actor.organization_id)
        grant = service.current_grant(client.organization_id, actor.organization_id)
        context["client_name"] = organization.name
        context["channels"] = service.client_channels(actor.organization_id)
        context["granted"] = set(grant.channel_ids) if grant else set()
    status = 422 if error else 200
    return Response(render_template("consent/authorize.html", **context), status=status)


def grant_token_extra(code) -> dict:
    """``grant`` in the token response of a code issued by a consent approval."""
    return service.grant_for_token_response(getattr(code, "context", None))


def register() -> None:
    """Plug the consent screen and the token-response ``grant`` into the OAuth server."""
    from idp.oauth.authorize import AUTHORIZATION_HANDLERS, TOKEN_RESPONSE_EXTRAS

    AUTHORIZATION_HANDLERS["partner"] = consent_step
    if grant_token_extra not in TOKEN_RESPONSE_EXTRAS:
        TOKEN_RESPONSE_EXTRAS.append(grant_token_extra)

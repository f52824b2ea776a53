"""OAuth clients of the demo, and the demo callback page that shows what a client receives."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, redirect, render_template, request
from itsdangerous import BadSignature, URLSafeSerializer

from idp.extensions import csrf, db
from idp.oauth.clients import register_hub_client
from idp.oauth.models import OAuthClient, sha256_hex
from idp.timeutil import utcnow

CALLBACK_PATH = "/demo/callback"
# Known secrets so a person can try the Partner API; demo data only, never production.
PARTNER_SERVICE_CLIENT_ID = "oc_demo_acme_service"
PARTNER_SERVICE_SECRET = "demo-acme-service-secret-0123456789abcdefghijk"
CONSENT_CLIENT_ID = "oc_demo_acme_consent"
CONSENT_CLIENT_SECRET = "demo-acme-consent-secret-0123456789abcdefghijk"
PLATFORM_CLIENT_ID = "oc_demo_provisioning"
PLATFORM_CLIENT_SECRET = "demo-provisioning-secret-0123456789abcdefghijk"
PARTNER_SCOPE = (
    "api_keys:create api_keys:read api_keys:revoke channels:read clients:read "
    "consent_links:create grants:read webhook_deliveries:read"
)

callback_bp = Blueprint("demo_oauth", __name__)


DEMO_HUBS = {"partner": "partner-hub", "client": "client-hub", "support": "support-console"}
# The demo relying party keeps its own cookie, as a real frontend would: the
# identity provider's session is replaced at login and must not carry RP state.
_RP_COOKIE = "idp_demo_rp"


def _rp_state() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="demo-relying-party")


def _pending_logins() -> dict:
    try:
        return _rp_state().loads(request.cookies.get(_RP_COOKIE, ""))
    except BadSignature:
        return {}


@callback_bp.route("/demo")
def start_page():
    """List the hubs a person can log in to, as their frontends would (development only)."""
    return render_template("oauth/demo_start.html", hubs=DEMO_HUBS)


@callback_bp.route("/demo/login/<hub>")
def start_login(hub: str):
    """Start an authorization-code + PKCE login for a hub frontend, as a relying party would."""
    client_id = DEMO_HUBS.get(hub) or abort(404)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    state = secrets.token_urlsafe(16)
    pending = dict(list(_pending_logins().items())[-4:])  # keep the cookie small
    pending[state] = {"client_id": client_id, "verifier": verifier}
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": current_app.config["IDP_ISSUER"] + CALLBACK_PATH,
        "scope": "openid email profile",
        "state": state,
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
    }
    response = redirect("/oauth/authorize?" + urlencode(query))
    response.set_cookie(
        _RP_COOKIE,
        _rp_state().dumps(pending),
        path="/demo",
        httponly=True,
        samesite="Lax",
        # Over https, as the service's own session cookie: never sent over plain http.
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


# The authorization server posts the response here for response_mode=form_post: a
# relying party's redirect URI takes no form token of ours (its `state` is checked).
@callback_bp.route(CALLBACK_PATH, methods=["GET", "POST"])
@csrf.exempt
def callback():
    """Show the authorization response, and how the frontend exchanges it (development only)."""
    params = (request.form if request.method == "POST" else request.args).to_dict()
    started = _pending_logins().get(params.get("state", ""))
    exchange = None
    if started and "code" in params:
        exchange = {
            "token_endpoint": current_app.config["IDP_ISSUER"] + "/oauth/token",
            "client_id": started["client_id"],
            "code": params["code"],
            "redirect_uri": current_app.config["IDP_ISSUER"] + CALLBACK_PATH,
            "code_verifier": started["verifier"],
        }
    return render_template("oauth/demo_callback.html", params=params, exchange=exchange)


def callback_uris() -> list[str]:
    """The demo callback on the usual local hosts and on the configured issuer."""
    uris = [f"http://127.0.0.1:8000{CALLBACK_PATH}", f"http://localhost:8000{CALLBACK_PATH}"]
    issuer_uri = current_app.config["IDP_ISSUER"] + CALLBACK_PATH
    return list(dict.fromkeys([*uris, issuer_uri]))


def _confidential(client_id: str, secret: str, **fields) -> OAuthClient:
    client = db.session.get(OAuthClient, client_id)
    if client is None:
        client = OAuthClient(client_id=client_id, created_at=utcnow())
        db.session.add(client)
    client.client_secret_hash = sha256_hex(secret)
    client.post_logout_redirect_uris = []
    client.deleted_at = None
    for name, value in fields.items():
        setattr(client, name, value)
    return client


def load(data: dict) -> None:
    """Hub frontends, Acme's service and consent clients, the provisioning service client."""
    uris = callback_uris()
    rows = [register_hub_client(hub, uris, uris) for hub in ("partner", "client", "support")]
    acme = next(p for p in data["partners"] if p["name"] == "Acme Messaging")
    service = _confidential(
        PARTNER_SERVICE_CLIENT_ID,
        PARTNER_SERVICE_SECRET,
        name="Acme Messaging API",
        kind="partner",
        hub="partner",
        organization_id=acme["id"],
        redirect_uris=[],
        scope=PARTNER_SCOPE,
    )
    consent = _confidential(
        CONSENT_CLIENT_ID,
        CONSENT_CLIENT_SECRET,
        name="Acme Messaging",
        kind="partner",
        hub="partner",
        organization_id=acme["id"],
        redirect_uris=uris,
        scope="channels:read api_keys:create api_keys:read",
    )
    platform = _confidential(
        PLATFORM_CLIENT_ID,
        PLATFORM_CLIENT_SECRET,
        name="Provisioning service",
        kind="platform",
        hub="support",
        organization_id=data["support"]["id"],
        redirect_uris=[],
        scope="channels:read channels:write",
    )
    db.session.flush()
    data["oauth_clients"] = [
        {
            "client_id": c.client_id,
            "name": c.name,
            "kind": "hub",
            "hub": c.hub,
            "redirect_uris": c.redirect_uris,
            "id_token_signed_response_alg": c.id_token_signed_response_alg,
        }
        for c in rows
    ]
    for client, secret in (
        (service, PARTNER_SERVICE_SECRET),
        (consent, CONSENT_CLIENT_SECRET),
        (platform, PLATFORM_CLIENT_SECRET),
    ):
        data["oauth_clients"].append(
            {
                "client_id": client.client_id,
                "client_secret": secret,
                "name": client.name,
                "kind": client.kind,
                "organization_id": client.organization_id,
                "scope": client.scope,
                "redirect_uris": client.redirect_uris,
            }
        )
    data["partner_service_client"] = {
        "client_id": service.client_id,
        "client_secret": PARTNER_SERVICE_SECRET,
    }
    data["consent_client"] = {
        "client_id": consent.client_id,
        "client_secret": CONSENT_CLIENT_SECRET,
    }
    data["platform_client"] = {
        "client_id": platform.client_id,
        "client_secret": PLATFORM_CLIENT_SECRET,
    }

"""Demo consent: Blue Bakery grants Acme Messaging two channels, and Acme holds a key for one."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from idp.apikeys.keyformat import PREFIX, key_from_text, with_checksum
from idp.apikeys.models import ChannelApiKey
from idp.consent.models import ConsentGrant, ConsentLink, GrantChannel
from idp.consent.oauth_bridge import consent_client as consent_client_facts
from idp.consent.queries import active_grant
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.timeutil import utcnow
from policies.consent import DEFAULT_CONSENT_SCOPE

# A fixed, published demo key so `idp demo` stays idempotent; never valid outside the demo data.
DEMO_API_KEY = with_checksum(
    PREFIX + "DemoAcmeKey1" + "BlueBakeryOrdersDemoKeyNotForProductionUse1"
)
# A ready consent link of Acme's consent client, with a published PKCE verifier.
DEMO_LINK_ID = "lnk_demo_acme"
DEMO_CODE_VERIFIER = "demo-acme-pkce-verifier-0123456789abcdefghijklmnop"


def _by_name(rows: list[dict], name: str) -> dict:
    return next(row for row in rows if row["name"] == name)


def load(data: dict) -> None:
    """Create the demo grant (two channels) and Acme's key on the first, when missing or revoked."""
    acme = _by_name(data["partners"], "Acme Messaging")
    bakery = _by_name(data["clients"], "Blue Bakery")
    granted = [c for c in bakery["channels"] if c["status"] in {"live", "running"}][:2]
    owner = next(u for u in data["users"] if u["email"] == "owner@bluebakery.example")
    acme_owner = next(u for u in data["users"] if u["email"] == "owner@acme.example")
    grant = active_grant(acme["id"], bakery["id"])
    if grant is None:
        grant = ConsentGrant(
            id=new_id(PREFIXES["grant"]),
            client_id=bakery["id"],
            partner_id=acme["id"],
            oauth_client_id=data.get("consent_client", {}).get("client_id"),
            scope=DEFAULT_CONSENT_SCOPE,
            granted_by_id=owner["id"],
            updated_at=utcnow(),
        )
        grant.channels = [GrantChannel(channel_id=c["id"]) for c in granted]
        db.session.add(grant)
        db.session.flush()
    stored = key_from_text(DEMO_API_KEY)
    key = db.session.scalar(
        sa.select(ChannelApiKey).where(ChannelApiKey.lookup_id == stored.lookup_id)
    )
    if key is None:
        key = ChannelApiKey(
            id=new_id(PREFIXES["api_key"]),
            lookup_id=stored.lookup_id,
            secret_hash=stored.secret_hash,
            last_four=stored.last_four,
            channel_id=granted[0]["id"],
            client_id=bakery["id"],
            partner_id=acme["id"],
            grant_id=grant.id,
            created_by_type="user",
            created_by_id=acme_owner["id"],
        )
        db.session.add(key)
    # The published key must work after each load: once the grant it was made
    # under is revoked (trying the demo's consent flow does that), or the key
    # itself is revoked or retired, it is issued again under the active grant.
    if key.channel_id not in grant.channel_ids:
        key.channel_id = granted[0]["id"]
    key.grant_id = grant.id
    key.revoked_at = key.revoked_reason = key.expires_at = None
    db.session.flush()
    link = _demo_link(acme["id"], data.get("consent_client"))
    data["consent"] = {
        "grant": {
            "id": grant.id,
            "client": bakery["id"],
            "partner": acme["id"],
            "channels": grant.channel_ids,
            "scope": grant.scope,
        },
        "api_key": {"id": key.id, "api_key": DEMO_API_KEY, "channel_id": key.channel_id},
    }
    if link is not None:
        data["consent"]["link"] = {
            "url": current_app.config["IDP_ISSUER"] + f"/c/{link.id}",
            "redirect_uri": link.redirect_uri,
            "state": link.state,
            "code_verifier": DEMO_CODE_VERIFIER,
        }


def _demo_link(partner_id: str, consent_client: dict | None) -> ConsentLink | None:
    """Acme's demo consent link to its demo callback page, valid for 30 days from each load."""
    client = consent_client and consent_client_facts(consent_client["client_id"])
    if not client:
        return None
    link = db.session.get(ConsentLink, DEMO_LINK_ID)
    if link is None:
        link = ConsentLink(id=DEMO_LINK_ID, partner_id=partner_id, created_by="demo")
        db.session.add(link)
    link.oauth_client_id = client.client_id
    link.redirect_uri = next(
        (u for u in client.redirect_uris if u.startswith(current_app.config["IDP_ISSUER"])),
        client.redirect_uris[0],
    )
    link.state = "demo-state"
    link.scope = DEFAULT_CONSENT_SCOPE
    link.login_hint = "owner@bluebakery.example"
    digest = hashlib.sha256(DEMO_CODE_VERIFIER.encode()).digest()
    link.code_challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    link.code_challenge_method = "S256"
    link.expires_at = utcnow() + timedelta(days=30)
    db.session.flush()
    return link

"""Demo consent: Blue Bakery grants Acme Messaging two channels, and Acme holds a key for one."""

from __future__ import annotations

import sqlalchemy as sa

from idp.apikeys.keyformat import PREFIX, key_from_text, with_checksum
from idp.apikeys.models import ChannelApiKey
from idp.consent.models import ConsentGrant, GrantChannel
from idp.consent.queries import active_grant
from idp.extensions import db
from idp.ids import new_id
from idp.timeutil import utcnow
from policies.consent import DEFAULT_CONSENT_SCOPE

# A fixed, published demo key so `idp demo` stays idempotent; never valid outside the demo data.
DEMO_API_KEY = with_checksum(
    PREFIX + "DemoAcmeKey1" + "BlueBakeryOrdersDemoKeyNotForProductionUse1"
)


def _by_name(rows: list[dict], name: str) -> dict:
    return next(row for row in rows if row["name"] == name)


def load(data: dict) -> None:
    """Create the demo grant (two channels) and Acme's key on the first, when missing."""
    acme = _by_name(data["partners"], "Acme Messaging")
    bakery = _by_name(data["clients"], "Blue Bakery")
    granted = [c for c in bakery["channels"] if c["status"] in {"live", "running"}][:2]
    owner = next(u for u in data["users"] if u["email"] == "owner@bluebakery.example")
    acme_owner = next(u for u in data["users"] if u["email"] == "owner@acme.example")
    grant = active_grant(acme["id"], bakery["id"])
    if grant is None:
        grant = ConsentGrant(
            id=new_id("gr"),
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
            id=new_id("key"),
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
        db.session.flush()
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

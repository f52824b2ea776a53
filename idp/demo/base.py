"""Organizations, users, memberships, WABAs and channels of the demo."""

from __future__ import annotations

from idp.accounts.emails import normalize_email
from idp.accounts.models import User
from idp.accounts.passwords import hash_password
from idp.channels.models import Channel, ChannelStatusChange, Waba
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.orgs.models import Membership, Organization
from idp.timeutil import utcnow

DEMO_PASSWORD = "demo-password-2026"

PARTNERS = ["Acme Messaging", "Globex Solutions"]
CLIENTS = [
    # name, onboarding partner, channels (number, display name, status)
    (
        "Blue Bakery",
        "Acme Messaging",
        [
            ("+14155550101", "Blue Bakery Orders", "live"),
            ("+14155550102", "Blue Bakery Support", "running"),
            ("+14155550103", "Blue Bakery Events", "pending"),
        ],
    ),
    (
        "Green Garage",
        "Globex Solutions",
        [
            ("+442071838750", "Green Garage Bookings", "ready"),
            ("+442071838751", "Green Garage Parts", "created"),
        ],
    ),
    (
        "Red Rooftops",
        None,
        [
            ("+4930901820", "Red Rooftops", "live"),
            ("+4930901821", "Red Rooftops Old", "suspended"),
        ],
    ),
]
USERS = [
    # email, name, hub, [(organization, role)]
    ("owner@acme.example", "Alice Acme", "partner", [("Acme Messaging", "owner")]),
    ("member@acme.example", "Mark Acme", "partner", [("Acme Messaging", "member")]),
    ("owner@globex.example", "Greta Globex", "partner", [("Globex Solutions", "owner")]),
    ("member@globex.example", "Gus Globex", "partner", [("Globex Solutions", "member")]),
    (
        "consultant@partners.example",
        "Pat Both",
        "partner",
        [("Acme Messaging", "member"), ("Globex Solutions", "owner")],
    ),
    ("owner@bluebakery.example", "Bea Baker", "client", [("Blue Bakery", "owner")]),
    ("staff@bluebakery.example", "Sam Baker", "client", [("Blue Bakery", "member")]),
    ("owner@greengarage.example", "Gil Garage", "client", [("Green Garage", "owner")]),
    ("owner@redrooftops.example", "Rita Roof", "client", [("Red Rooftops", "owner")]),
    ("agent@support.example", "Sid Support", "support", [("Support", "agent")]),
    ("admin@support.example", "Ada Admin", "support", [("Support", "admin")]),
]
# The lifecycle path each demo status was reached by, for a believable history.
_PATHS = {
    "created": ["created"],
    "pending": ["created", "pending"],
    "ready": ["created", "pending", "ready"],
    "running": ["created", "pending", "ready", "running"],
    "live": ["created", "pending", "ready", "running", "live"],
    "suspended": ["created", "pending", "ready", "running", "live", "suspended"],
}


def _org(kind: str, name: str, **kwargs) -> Organization:
    found = db.session.scalar(
        db.select(Organization).where(Organization.kind == kind, Organization.name == name)
    )
    if found is None:
        found = Organization.create(kind, name, **kwargs)
        db.session.add(found)
        db.session.flush()
    return found


def _user(email: str, name: str, hub: str) -> User:
    normalized = normalize_email(email)
    found = db.session.scalar(db.select(User).where(User.email_normalized == normalized))
    if found is None:
        found = User.create(
            email=email,
            email_normalized=normalized,
            hub=hub,
            name=name,
            email_verified=True,
            password_hash=hash_password(DEMO_PASSWORD),
            password_changed_at=utcnow(),
        )
        db.session.add(found)
        db.session.flush()
    return found


def _channels(client: Organization, specs) -> list[dict]:
    waba = db.session.scalar(db.select(Waba).where(Waba.client_id == client.id))
    if waba is None:
        waba = Waba.create(client, f"{client.name} WABA", verification_state="verified")
        db.session.add(waba)
        db.session.flush()
    rows = []
    for number, display_name, status in specs:
        channel = db.session.scalar(
            db.select(Channel).where(Channel.phone_number == number, Channel.status != "terminated")
        )
        if channel is None:
            channel = Channel.create(
                waba,
                number,
                display_name,
                status=status,
                account_mode="live" if status in {"live", "suspended"} else "sandbox",
            )
            db.session.add(channel)
            previous = None
            for step in _PATHS[status]:
                db.session.add(
                    ChannelStatusChange(
                        id=new_id(PREFIXES["status_change"]),
                        channel=channel,
                        from_status=previous,
                        to_status=step,
                        reason="demo data",
                        actor_id="demo",
                    )
                )
                previous = step
            db.session.flush()
        rows.append(
            {
                "id": channel.id,
                "phone_number": channel.phone_number,
                "display_name": channel.display_name,
                "status": channel.status,
                "waba_id": waba.id,
            }
        )
    return rows


def load(data: dict) -> None:
    """Create the demo organizations, users and channels that are missing."""
    orgs: dict[str, Organization] = {}
    for name in PARTNERS:
        orgs[name] = _org("partner", name)
    orgs["Support"] = _org("support", "Support")
    data["partners"] = [{"id": orgs[n].id, "name": n} for n in PARTNERS]
    data["clients"] = []
    for name, partner, specs in CLIENTS:
        onboarding = orgs[partner].id if partner else None
        orgs[name] = _org("client", name, onboarding_partner_id=onboarding)
        data["clients"].append(
            {
                "id": orgs[name].id,
                "name": name,
                "onboarding_partner_id": onboarding,
                "channels": _channels(orgs[name], specs),
            }
        )
    data["support"] = {"id": orgs["Support"].id, "name": "Support"}
    data["users"] = []
    for email, name, hub, memberships in USERS:
        user = _user(email, name, hub)
        existing = {m.organization_id for m in user.memberships}
        for org_name, role in memberships:
            if orgs[org_name].id not in existing:
                db.session.add(Membership.create(user, orgs[org_name], role))
        db.session.flush()
        data["users"].append(
            {
                "id": user.id,
                "email": user.email,
                "hub": hub,
                "memberships": [
                    {"organization": o, "organization_id": orgs[o].id, "role": r}
                    for o, r in memberships
                ],
            }
        )

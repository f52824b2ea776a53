"""Demo data for ``make run``: loaded idempotently, printed for a person to try."""

from __future__ import annotations

from idp.demo import base, channels, consent, oauth, support
from idp.extensions import db

DEMO_PASSWORD = base.DEMO_PASSWORD

# Each concept adds its demo objects with a ``load(data)`` step, in this order.
STEPS = [base.load, oauth.load, consent.load, support.load, channels.load]


def load_demo() -> dict:
    """Run every demo step, commit once, and return the demo data as a dict."""
    data: dict = {"password": DEMO_PASSWORD}
    for step in STEPS:
        step(data)
    db.session.commit()
    return data


def describe(data: dict) -> str:
    """Human summary of the demo data for the terminal."""
    lines = [f"Demo password for every account: {data['password']}", "", "Accounts:"]
    for user in data.get("users", []):
        orgs = ", ".join(f"{m['organization']} ({m['role']})" for m in user["memberships"])
        lines.append(f"  {user['email']:<32} {user['hub']:<8} {orgs}")
    for title, key in (("OAuth clients", "oauth_clients"),):
        if data.get(key):
            lines += ["", f"{title}:"]
            for client in data[key]:
                lines.append(f"  {client['client_id']:<34} {client.get('name', '')}")
    if data.get("webhooks"):
        hooks = data["webhooks"]
        lines += ["", f"{hooks['partner']} webhooks go to {hooks['url']} (run `idp worker`)."]
    if data.get("email_conflicts"):
        lines += ["", "Email conflicts (support console: /support/conflicts):"]
        for conflict in data["email_conflicts"]:
            held, holder = conflict["held_account"], conflict["holder_account"]
            lines.append(
                f"  {conflict['email']:<32} held {held['hub']} account, used by {holder['hub']}"
            )
    return "\n".join(lines)

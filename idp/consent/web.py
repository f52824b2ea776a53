"""The logged-in person of a page, as the policy actor of the organization they act for."""

from __future__ import annotations

from flask import redirect, request, url_for

from policies.actor import Actor


def actor_for_user(user) -> Actor:
    """The actor of a browser user: their last-used organization, else their first membership."""
    memberships = list(user.memberships)
    chosen = next(
        (m for m in memberships if m.organization_id == user.last_organization_id),
        memberships[0] if memberships else None,
    )
    return Actor(
        hub=user.hub,
        organization_id=chosen.organization_id if chosen else None,
        roles=frozenset({chosen.role}) if chosen else frozenset(),
        user_id=user.id,
    )


def login_redirect():
    """Send the browser to the Client Hub login and back to this page."""
    return redirect(url_for("login.login", hub="client", next=request.full_path.rstrip("?")))

"""Where consent meets the OAuth server: the partner's consent client, read as plain facts."""

from __future__ import annotations

from dataclasses import dataclass

from idp.extensions import db
from idp.oauth.models import OAuthClient


@dataclass(frozen=True, slots=True)
class ConsentClient:
    """A partner's confidential OAuth client that may run the consent flow."""

    client_id: str
    name: str
    partner_id: str
    redirect_uris: tuple[str, ...]
    scope: str


def consent_client(client_id: str) -> ConsentClient | None:
    """The live partner client ``client_id`` with redirect URIs, or None."""
    row = db.session.get(OAuthClient, client_id)
    if row is None or row.kind != "partner" or row.deleted_at is not None:
        return None
    if not row.redirect_uris:
        return None
    return ConsentClient(
        client_id=row.client_id,
        name=row.name,
        partner_id=row.organization_id,
        redirect_uris=tuple(row.redirect_uris),
        scope=row.scope or "",
    )

"""The demo data holds an active grant with a working key, and loading it twice changes nothing."""

from idp.apikeys import service as keys
from idp.consent.models import ConsentGrant
from idp.demo import load_demo
from idp.extensions import db


def test_the_demo_grant_and_key_work_and_loading_is_idempotent(app_ctx):
    first = load_demo()
    second = load_demo()
    assert first["consent"] == second["consent"]
    consent = second["consent"]
    assert len(consent["grant"]["channels"]) == 2
    assert db.session.query(ConsentGrant).count() == 1
    identity = keys.check_key(consent["api_key"]["api_key"])
    assert identity.partner_id == consent["grant"]["partner"]
    assert identity.channel_id in consent["grant"]["channels"]


def test_the_demo_link_opens_the_consent_flow_of_acme(app, client):
    from urllib.parse import parse_qs, urlsplit

    from idp.consent import links

    with app.app_context():
        data = load_demo()
        link = data["consent"]["link"]
        target, row = links.resolve_link(urlsplit(link["url"]).path.rsplit("/", 1)[1])
        db.session.remove()
    query = parse_qs(urlsplit(target).query)
    assert query["client_id"] == [data["consent_client"]["client_id"]]
    assert query["redirect_uri"] == [link["redirect_uri"]]
    assert query["login_hint"] == ["owner@bluebakery.example"]
    page = client.get(urlsplit(link["url"]).path)
    assert page.status_code == 200 and "Connect Acme Messaging" in page.get_data(as_text=True)


def test_the_printed_key_works_again_after_the_demo_grant_was_revoked_and_reloaded(app_ctx):
    from idp.apikeys.service import revoke_grant_keys
    from idp.timeutil import utcnow

    first = load_demo()
    grant = db.session.get(ConsentGrant, first["consent"]["grant"]["id"])
    grant.revoked_at = utcnow()  # what trying the consent flow's "revoke" does
    revoke_grant_keys(grant.id, "the client revoked the grant")
    db.session.commit()

    second = load_demo()

    assert second["consent"]["grant"]["id"] != grant.id
    identity = keys.check_key(second["consent"]["api_key"]["api_key"])
    assert identity.channel_id in second["consent"]["grant"]["channels"]
    assert load_demo()["consent"] == second["consent"]


def test_the_printed_key_works_again_after_it_was_revoked_and_reloaded(app_ctx):
    from idp.apikeys.models import ChannelApiKey
    from idp.apikeys.service import revoke_channel_keys

    first = load_demo()
    key = db.session.get(ChannelApiKey, first["consent"]["api_key"]["id"])
    revoke_channel_keys(key.channel_id, "the channel's keys were revoked")
    db.session.commit()

    second = load_demo()

    assert second["consent"] == first["consent"]
    assert keys.check_key(second["consent"]["api_key"]["api_key"]).channel_id == key.channel_id

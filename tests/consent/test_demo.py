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

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

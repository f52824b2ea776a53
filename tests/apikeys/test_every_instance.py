"""A revocation made through one instance refuses the key on the very next check of another."""

import pytest

from idp import create_app
from idp.extensions import db
from tests.conftest import app_config
from tests.consent.factories import make_grant
from tests.factories import bearer_for, make_channel, make_org, make_user

CHECK = "/v1/api-keys/check"


@pytest.fixture
def second_instance(app, database_url, redis_prefix):
    """Another application process's worth of state over the same database."""
    other = create_app(app_config(database_url, redis_prefix))
    yield other
    with other.app_context():
        db.engine.dispose()


def test_revocations_hold_on_every_instance_at_once(app, second_instance):
    with app.app_context():
        shop, partner = make_org("client"), make_org("partner")
        channel = make_channel(shop)
        grant = make_grant(shop, partner, [channel])
        shop_auth = bearer_for(make_user("client", shop, "owner"), shop)
        partner_auth = bearer_for(make_user("partner", partner, "owner"), partner)
        ids = (shop.id, partner.id, channel.id, grant.id)
        db.session.remove()
    shop_id, partner_id, channel_id, grant_id = ids
    one, two = app.test_client(), second_instance.test_client()
    keys_url = f"/v1/partners/{partner_id}/channels/{channel_id}/api-keys"

    first = one.post(keys_url, headers=partner_auth).get_json()["api_key"]
    assert two.get(CHECK, headers={"D360-API-KEY": first}).status_code == 200
    # A new key made on one instance ends the earlier key on the other.
    second = one.post(keys_url, headers=partner_auth).get_json()["api_key"]
    assert two.get(CHECK, headers={"D360-API-KEY": first}).status_code == 401
    assert two.get(CHECK, headers={"D360-API-KEY": second}).status_code == 200
    # Revoking the grant on one instance ends the key on the other.
    revoke = one.delete(f"/v1/clients/{shop_id}/grants/{grant_id}", headers=shop_auth)
    assert revoke.status_code == 204
    assert two.get(CHECK, headers={"D360-API-KEY": second}).status_code == 401

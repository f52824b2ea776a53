"""The helpers other concepts call: terminate a channel, disable a client, end a grant."""

import pytest

from idp.apikeys import service as keys
from idp.extensions import db
from tests.consent.factories import make_grant, make_key
from tests.factories import make_channel, make_org


@pytest.fixture
def world(app_ctx):
    client = make_org("client")
    other = make_org("client")
    partner = make_org("partner")
    ch1, ch2 = make_channel(client), make_channel(client, "running")
    other_channel = make_channel(other)
    db.session.commit()
    return client, other, partner, ch1, ch2, other_channel


def accepted(text):
    try:
        keys.check_key(text)
    except keys.InvalidApiKey:
        return False
    return True


def test_revoke_channel_keys_stops_only_that_channel(world):
    client, other, partner, ch1, ch2, other_channel = world
    k1, k2, k3 = make_key(ch1), make_key(ch2), make_key(other_channel)
    assert keys.revoke_channel_keys(ch1.id, "channel terminated") == 1
    db.session.commit()
    assert (accepted(k1), accepted(k2), accepted(k3)) == (False, True, True)


def test_revoke_client_keys_stops_every_channel_of_that_client_only(world):
    client, other, partner, ch1, ch2, other_channel = world
    make_grant(client, partner, [ch1])
    k1, k2, k3 = make_key(ch1, partner=partner), make_key(ch2), make_key(other_channel)
    assert keys.revoke_client_keys(client.id, "client disabled") == 2
    db.session.commit()
    assert (accepted(k1), accepted(k2), accepted(k3)) == (False, False, True)


def test_helpers_do_not_commit(world):
    client, *_, ch1, _, _ = world
    text = make_key(ch1)
    keys.revoke_channel_keys(ch1.id, "channel terminated")
    db.session.rollback()
    assert accepted(text)


def test_the_check_names_channel_client_and_partner(world):
    client, other, partner, ch1, ch2, other_channel = world
    make_grant(client, partner, [ch1])
    identity = keys.check_key(make_key(ch1, partner=partner))
    assert identity == keys.KeyIdentity(ch1.id, client.id, partner.id)
    identity = keys.check_key(make_key(ch2))
    assert identity == keys.KeyIdentity(ch2.id, client.id, None)


def test_whether_a_channel_has_a_key_is_told_without_the_key(world):
    from idp.apikeys.models import channel_has_active_key

    client, *_, ch1, ch2, _ = world
    make_key(ch1)
    assert channel_has_active_key(ch1.id) and not channel_has_active_key(ch2.id)
    keys.revoke_channel_keys(ch1.id, "channel terminated")
    assert not channel_has_active_key(ch1.id)

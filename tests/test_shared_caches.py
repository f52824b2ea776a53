"""With Redis, instances cache hot rows; a change committed through any of them is seen at once.

Two applications over one database and one Redis namespace stand for two
instances. Every check is first served from the second instance's memory (the
tests prove it reads nothing), then a change goes through the first instance,
and the very next request to the second must reflect it: also while the
second still holds a counter reading it took within its lease.
"""

from __future__ import annotations

import secrets
import time

import pytest
import redis

from idp import changes, counter_readings
from idp.extensions import db
from idp.unannounced_changes import UNANNOUNCED
from tests.channels.conftest import provisioning_bearer
from tests.conftest import REDIS_URL
from tests.consent.factories import make_grant
from tests.factories import bearer_for, make_channel, make_org, make_user
from tests.instances import Reads, dispose, make_instance, redis_partition

pytestmark = pytest.mark.redis

CHECK = "/v1/api-keys/check"


@pytest.fixture
def keyed(app):
    """A client's live channel granted to a partner, with the actors that manage its keys."""
    with app.app_context():
        shop, partner, support = make_org("client"), make_org("partner"), make_org("support")
        channel = make_channel(shop)
        grant = make_grant(shop, partner, [channel])
        world = {
            "shop": shop.id,
            "partner": partner.id,
            "channel": channel.id,
            "grant": grant.id,
            "shop_auth": bearer_for(make_user("client", shop, "owner"), shop),
            "partner_auth": bearer_for(make_user("partner", partner, "owner"), partner),
            "provisioning": provisioning_bearer(support),
        }
        db.session.remove()
    world["keys_url"] = f"/v1/partners/{world['partner']}/channels/{world['channel']}/api-keys"
    return world


def _check(instance, key: str) -> int:
    return instance.test_client().get(CHECK, headers={"D360-API-KEY": key}).status_code


def _new_key(instance, world) -> dict:
    response = instance.test_client().post(world["keys_url"], headers=world["partner_auth"])
    assert response.status_code == 201, response.text
    return response.get_json()


def test_a_warm_instance_checks_a_key_without_a_query(redis_instances, keyed):
    one, two = redis_instances
    key = _new_key(one, keyed)["api_key"]
    assert _check(two, key) == 200
    with Reads(two, "channel_api_keys") as reads:
        assert [_check(two, key) for _ in range(3)] == [200, 200, 200]
    assert reads.count == 0
    # A wrong secret for the same lookup id is refused from the cached row too.
    assert _check(two, key[:-8] + "AAAAAAAA") == 401


def test_a_revoked_key_is_refused_by_the_other_instance_on_its_next_check(redis_instances, keyed):
    one, two = redis_instances
    created = _new_key(one, keyed)
    assert _check(two, created["api_key"]) == 200
    revoked = one.test_client().delete(
        f"{keyed['keys_url']}/{created['id']}", headers=keyed["partner_auth"]
    )
    assert revoked.status_code == 204
    assert _check(two, created["api_key"]) == 401


def test_a_new_key_retires_the_old_one_everywhere(redis_instances, keyed):
    one, two = redis_instances
    first = _new_key(one, keyed)["api_key"]
    assert _check(two, first) == 200
    second = _new_key(one, keyed)["api_key"]
    assert _check(two, first) == 401
    assert _check(two, second) == 200


def test_a_revoked_grant_ends_the_partners_key_everywhere(redis_instances, keyed):
    one, two = redis_instances
    key = _new_key(one, keyed)["api_key"]
    assert _check(two, key) == 200
    url = f"/v1/clients/{keyed['shop']}/grants/{keyed['grant']}"
    assert one.test_client().delete(url, headers=keyed["shop_auth"]).status_code == 204
    assert _check(two, key) == 401


def test_a_suspended_channel_refuses_its_keys_everywhere(redis_instances, keyed):
    # The status change is a compare-and-set UPDATE statement, not a flushed row.
    one, two = redis_instances
    key = _new_key(one, keyed)["api_key"]
    assert _check(two, key) == 200
    _suspend(one, keyed)
    assert _check(two, key) == 401


def _suspend(instance, world) -> None:
    moved = instance.test_client().post(
        f"/v1/channels/{world['channel']}/status",
        json={"status": "suspended", "reason": "billing"},
        headers=world["provisioning"],
    )
    assert moved.status_code == 200, moved.text


def _me(instance, auth) -> int:
    return instance.test_client().get("/oauth/userinfo", headers=auth).status_code


def test_a_revoked_login_is_refused_by_every_instance_on_its_next_request(redis_instances, app):
    one, two = redis_instances
    with app.app_context():
        shop = make_org("client")
        user = make_user("client", shop, "owner")
        support = make_org("support")
        auth = bearer_for(user, shop)
        admin = bearer_for(make_user("support", support, "admin"), support)
        user_id = user.id
        db.session.remove()
    assert _me(two, auth) == 200
    with Reads(two, "token_families") as reads:
        assert _me(two, auth) == 200
    assert reads.count == 0
    ended = one.test_client().post(
        f"/v1/support/accounts/{user_id}/end-sessions",
        json={"ticket": "T-1", "reason": "lost laptop"},
        headers=admin,
    )
    assert ended.status_code == 200, ended.text
    assert _me(two, auth) == 401


def test_without_a_reachable_redis_every_check_reads_the_database(app, database_url, keyed):
    # Nothing listens on port 9: counters cannot be read, so nothing is served from memory.
    prefix = f"down-{secrets.token_hex(3)}:"
    up = make_instance(database_url, prefix, redis_url=None)
    down = make_instance(database_url, prefix, redis_url="redis://127.0.0.1:9/0")
    try:
        created = _new_key(up, keyed)
        assert _check(down, created["api_key"]) == 200
        with Reads(down, "channel_api_keys") as reads:
            assert _check(down, created["api_key"]) == 200
        assert reads.count == 1
        url = f"{keyed['keys_url']}/{created['id']}"
        assert up.test_client().delete(url, headers=keyed["partner_auth"]).status_code == 204
        assert _check(down, created["api_key"]) == 401
    finally:
        dispose(up, down)


def _revoke(instance, world, key_id: str) -> int:
    url = f"{world['keys_url']}/{key_id}"
    return instance.test_client().delete(url, headers=world["partner_auth"]).status_code


def test_counters_lost_in_a_redis_restart_never_make_an_old_entry_current(
    redis_instances, keyed, redis_prefix
):
    # Redis keeps nothing on disk: a restart loses every counter. The changes that
    # follow must not climb back to a value some instance cached a row under.
    one, two = redis_instances
    created = _new_key(one, keyed)
    assert _check(two, created["api_key"]) == 200
    server = redis.Redis.from_url(REDIS_URL)
    prefix = one.config["IDP_REDIS_PREFIX"]
    values = server.mget(server.keys(prefix + "changes:*"))
    assert values and all(int(v) >= counter_readings.BASE_FLOOR for v in values)
    server.delete(*server.keys(prefix + "changes:*"))  # the restart

    assert _revoke(one, keyed, created["id"]) == 204
    assert _check(two, created["api_key"]) == 401


@pytest.fixture
def partition():
    with redis_partition() as link:
        yield link


@pytest.fixture
def writer_and_reader(app, database_url, partition):
    """A writer that reaches Redis through ``partition``, and a reader that reaches it directly."""
    prefix = f"partition-{secrets.token_hex(3)}:"
    pair = make_instance(database_url, prefix, partition.url()), make_instance(database_url, prefix)
    yield pair
    dispose(*pair)


def test_an_increment_lost_to_a_partition_is_sent_as_soon_as_redis_is_back(
    writer_and_reader, keyed, partition
):
    writer, reader = writer_and_reader
    created = _new_key(writer, keyed)
    assert _check(reader, created["api_key"]) == 200
    partition.cut()
    # Revoking works while the writer cannot reach Redis...
    assert _revoke(writer, keyed, created["id"]) == 204
    assert _check(writer, created["api_key"]) == 401
    partition.mend()
    # ...and the writer's next request announces it before anything else.
    assert _check(writer, created["api_key"]) == 401
    assert _check(reader, created["api_key"]) == 401


def _outlive_the_lease(instance) -> None:
    time.sleep(instance.config["IDP_CHANGE_LEASE_MS"] / 1000 * 1.1)


def _drop_counter_connection(instance) -> None:
    """Close, from the server's side, the one connection ``instance`` reads counters on.

    Only that one: other clients of the same Redis (another test run) keep theirs.
    """
    from idp.extensions import shared_redis

    with instance.app_context():
        connection = counter_readings._link(shared_redis()).connection
    host, port = connection._sock.getsockname()[:2]
    assert redis.Redis.from_url(REDIS_URL).client_kill_filter(_id=None, addr=f"{host}:{port}") == 1


def test_a_dropped_counter_connection_costs_one_request_and_one_refill(
    redis_instances, keyed, monkeypatch
):
    one, two = redis_instances
    key = _new_key(one, keyed)["api_key"]
    assert _check(two, key) == 200
    _drop_counter_connection(two)
    _outlive_the_lease(two)  # so that the next check must read the counters
    monkeypatch.setattr(counter_readings, "REDIAL_AFTER", 0.0)
    with Reads(two, "channel_api_keys") as reads:
        assert _check(two, key) == 200  # counters unreadable: the row is read
        # Redis answers again, but what was cached before the fault is not trusted:
        # one more read fills the cache again.
        assert [_check(two, key) for _ in range(3)] == [200, 200, 200]
    assert reads.count == 2


def test_a_writer_that_dies_after_its_commit_has_already_moved_the_counters(
    writer_and_reader, keyed, partition
):
    # The post-commit increment never happens: Redis is cut off right after the
    # change reached the database, and the writer is gone before it could retry.
    from idp.apikeys.models import ChannelApiKey
    from idp.timeutil import utcnow

    writer, reader = writer_and_reader
    created = _new_key(writer, keyed)
    assert _check(reader, created["api_key"]) == 200
    with writer.app_context():
        db.session.get(ChannelApiKey, created["id"]).revoked_at = utcnow()
        db.session.flush()
        partition.cut()
        db.session.commit()
    assert _check(reader, created["api_key"]) == 401


def _unannounced(instance) -> int:
    with instance.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(UNANNOUNCED))


def test_a_key_revoked_during_a_redis_outage_stays_refused_once_redis_is_back(
    app, database_url, keyed, monkeypatch
):
    monkeypatch.setattr(counter_readings, "REDIAL_AFTER", 0.0)
    monkeypatch.setattr(counter_readings, "CHECK_EVERY", 3600.0)  # no routine look during the test
    # Each instance reaches Redis through a forwarder of its own, so that each holds its
    # own client as a process would; the bystander serves nothing during the outage.
    with redis_partition() as to_writer, redis_partition() as to_reader:
        prefix = f"outage-{secrets.token_hex(3)}:"
        writer = make_instance(database_url, prefix, to_writer.url())
        reader = make_instance(database_url, prefix, to_reader.url())
        bystander = make_instance(database_url, prefix)
        try:
            created = _new_key(writer, keyed)
            assert _check(reader, created["api_key"]) == 200
            assert _check(bystander, created["api_key"]) == 200
            to_writer.cut()  # Redis is down for the writer and the reader
            to_reader.cut()
            # The revocation succeeds; both increments fail and are written down.
            assert _revoke(writer, keyed, created["id"]) == 204
            assert _unannounced(writer) == 1
            assert _check(reader, created["api_key"]) == 401  # counters unreadable
            to_writer.mend()
            to_reader.mend()
            _outlive_the_lease(reader)
            # The writer has not served a request since. The reader, having seen Redis
            # fail, makes the written-down increment before it trusts the counters...
            assert _check(reader, created["api_key"]) == 401
            assert _unannounced(reader) == 0
            # ...so the bystander, which never noticed the outage, refuses the key too.
            _outlive_the_lease(bystander)
            assert _check(bystander, created["api_key"]) == 401
        finally:
            dispose(writer, reader, bystander)


def test_a_change_redis_did_not_take_reaches_every_instance_without_its_writer(
    writer_and_reader, keyed, partition, monkeypatch
):
    # Redis answers the reader but not the writer (as when it refuses writes: out of
    # memory, a read-only replica), and the writer never serves another request.
    monkeypatch.setattr(counter_readings, "CHECK_EVERY", 0.2)
    writer, reader = writer_and_reader
    created = _new_key(writer, keyed)
    assert _check(reader, created["api_key"]) == 200
    partition.cut()
    assert _revoke(writer, keyed, created["id"]) == 204
    # Every instance looks for written-down increments at least every CHECK_EVERY.
    time.sleep(0.2 + reader.config["IDP_CHANGE_LEASE_MS"] / 1000)
    assert _check(reader, created["api_key"]) == 401
    assert _unannounced(reader) == 0


def test_a_bulk_update_redis_did_not_take_is_written_down_with_it(
    writer_and_reader, keyed, partition, monkeypatch
):
    # A compare-and-set UPDATE statement, not a flushed row, while Redis is away.
    monkeypatch.setattr(counter_readings, "CHECK_EVERY", 0.0)
    writer, reader = writer_and_reader
    key = _new_key(writer, keyed)["api_key"]
    assert _check(reader, key) == 200
    partition.cut()
    _suspend(writer, keyed)
    assert _check(reader, key) == 401


LONG_LEASE_MS = 400  # far longer than a test request, so a reader surely holds its reading


@pytest.fixture
def instances_leasing(database_url, redis_prefix):
    """``instances_leasing(ms)``: two instances that hold each counter reading ``ms``."""
    made = []

    def pair(lease_ms: int):
        prefix = f"{redis_prefix}leased-{secrets.token_hex(3)}:"
        made.extend(make_instance(database_url, prefix, IDP_CHANGE_LEASE_MS=lease_ms) for _ in "ab")
        return made[-2:]

    yield pair
    dispose(*made)


@pytest.fixture
def leased_instances(instances_leasing):
    """Two instances that hold each counter reading for ``LONG_LEASE_MS``."""
    return instances_leasing(LONG_LEASE_MS)


def _mgets() -> int:
    stats = redis.Redis.from_url(REDIS_URL).info("commandstats")
    return stats.get("cmdstat_mget", {}).get("calls", 0)


def test_within_its_lease_an_instance_checks_keys_without_asking_redis(leased_instances, keyed):
    one, two = leased_instances
    key = _new_key(one, keyed)["api_key"]
    assert _check(two, key) == 200
    before = _mgets()
    assert [_check(two, key) for _ in range(5)] == [200] * 5
    assert _mgets() - before <= 1  # at most one reading, should the lease run out meanwhile
    _outlive_the_lease(two)
    before = _mgets()
    assert _check(two, key) == 200
    assert _mgets() - before == 1  # a lease that ran out is read again


def test_a_revocation_returns_only_once_no_instance_holds_an_older_reading(leased_instances, keyed):
    one, two = leased_instances
    created = _new_key(one, keyed)
    assert _check(two, created["api_key"]) == 200  # two now holds a reading for 400 ms
    assert _revoke(one, keyed, created["id"]) == 204
    assert _check(two, created["api_key"]) == 401


def test_a_lease_of_zero_reads_the_counters_on_every_request(instances_leasing, keyed):
    one, two = instances_leasing(0)
    key = _new_key(one, keyed)["api_key"]
    assert _check(two, key) == 200
    before = _mgets()
    with Reads(two, "channel_api_keys") as reads:
        assert [_check(two, key) for _ in range(3)] == [200] * 3
    assert (_mgets() - before, reads.count) == (3, 0)


def test_a_row_added_by_a_plain_insert_moves_its_counter_like_a_flushed_one(redis_instances):
    from idp.oauth.models import OAuthClient
    from idp.timeutil import utcnow

    one, _ = redis_instances
    client = redis.Redis.from_url(REDIS_URL)
    key = one.config["IDP_REDIS_PREFIX"] + "changes:oauth-clients"
    with one.test_request_context():
        changes._versions()  # the counter exists before the insert
        before = client.get(key)
        db.session.execute(
            db.insert(OAuthClient.__table__).values(
                client_id=f"plain-{secrets.token_hex(4)}",
                kind="platform",
                hub="support",
                name="Plain insert",
                created_at=utcnow(),
            )
        )
        db.session.commit()
    assert before is not None
    # Twice: inside the transaction and after the commit, as for a flushed row.
    assert int(client.get(key)) == int(before) + 2

"""The JWKS (RFC 7517) as relying parties and gateways fetch it: cacheable, revalidated, current.

Two applications over one database and one Redis namespace stand for two
instances: a key rotated through one is in the other's JWKS on its next
request, while a warm instance serves the document without reading a key.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo

from idp.cli import main
from idp.extensions import db
from idp.keys.models import SigningKey
from idp.keys.operations import rotate
from idp.keys.service import JWKS_MAX_AGE, PUBLISH_AHEAD, ensure_signing_key
from idp.operator import operator_actor
from idp.timeutil import utcnow
from tests.instances import Reads

JWKS = "/oauth/jwks"

OPERATOR = operator_actor("keys rotate")


def _kids(response) -> set[str]:
    return {key["kid"] for key in response.get_json()["keys"]}


def test_the_jwks_is_public_cacheable_json_with_a_strong_etag(client):
    response = client.get(JWKS)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == f"public, max-age={JWKS_MAX_AGE}"
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 20
    # A copy cached just before a rotation is gone before the rotated key signs.
    assert timedelta(seconds=JWKS_MAX_AGE) < PUBLISH_AHEAD


def test_the_same_keys_keep_their_etag(client):
    assert client.get(JWKS).headers["ETag"] == client.get(JWKS).headers["ETag"]


@pytest.mark.parametrize("validator", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_a_client_holding_the_current_jwks_gets_304_without_a_body(client, validator):
    etag = client.get(JWKS).headers["ETag"]
    response = client.get(JWKS, headers={"If-None-Match": validator.format(etag=etag)})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == f"public, max-age={JWKS_MAX_AGE}"


def test_a_client_holding_another_version_gets_the_whole_jwks(client):
    current = client.get(JWKS)
    response = client.get(JWKS, headers={"If-None-Match": '"not-this-one"'})
    assert response.status_code == 200
    assert response.get_json() == current.get_json()


def test_after_a_rotation_the_old_etag_gets_the_new_keys(app, client):
    before = client.get(JWKS)
    with app.app_context():
        new = {row.kid for row in rotate(OPERATOR)}
    response = client.get(JWKS, headers={"If-None-Match": before.headers["ETag"]})
    assert response.status_code == 200
    assert new <= _kids(response)
    assert response.headers["ETag"] != before.headers["ETag"]


@pytest.mark.redis
def test_a_warm_instance_serves_the_jwks_without_reading_the_keys(redis_instances):
    one, two = redis_instances
    one.test_client().get(JWKS)  # the first request makes the first key
    first = two.test_client().get(JWKS)
    with Reads(two, "signing_keys") as reads:
        again = [two.test_client().get(JWKS) for _ in range(3)]
    assert reads.count == 0
    assert [r.get_json() for r in again] == [first.get_json()] * 3


@pytest.mark.redis
def test_a_rotation_through_one_instance_is_in_the_others_jwks_on_its_next_request(
    redis_instances,
):
    one, two = redis_instances
    one.test_client().get(JWKS)  # the first request makes the first key
    before = two.test_client().get(JWKS)
    result = CliRunner().invoke(main, ["keys", "rotate"], obj=ScriptInfo(create_app=lambda: one))
    assert result.exit_code == 0, result.output
    with one.app_context():
        published = set(db.session.scalars(db.select(SigningKey.kid))) - _kids(before)
    assert published  # a new key of each algorithm (and the first RS256 key)
    after = two.test_client().get(JWKS, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert published <= _kids(after)


@pytest.mark.redis
def test_a_retired_key_leaves_a_warm_jwks_once_its_tokens_have_expired(redis_instances):
    one, two = redis_instances
    with one.app_context():
        ensure_signing_key()
        old = db.session.scalars(db.select(SigningKey)).one()
        old.activates_at -= timedelta(days=10)
        (new,) = [row for row in rotate(OPERATOR) if row.algorithm == "ES256"]
        # The successor signs; the old key's last tokens expire a second from now.
        config = one.config
        lifetime = max(config["IDP_ACCESS_TOKEN_TTL"], config["IDP_ID_TOKEN_TTL"])
        new.activates_at = utcnow() - timedelta(seconds=lifetime - 1)
        old = old.kid
        db.session.commit()
    assert old in _kids(two.test_client().get(JWKS))
    time.sleep(1.2)
    assert old not in _kids(two.test_client().get(JWKS))


@pytest.mark.redis
def test_idp_keys_rotate_run_by_an_operator_is_in_every_instances_next_jwks(
    redis_instances, database_url, tmp_path
):
    # The command runs in a process of its own, which has never served a JWKS.
    one, two = redis_instances
    for instance in (one, two):  # the first request makes the first key; then both are warm
        instance.test_client().get(JWKS)
    with Reads(two, "signing_keys") as reads:
        two.test_client().get(JWKS)
    assert reads.count == 0
    env = dict(
        os.environ,
        IDP_DATABASE_URL=database_url,
        IDP_REDIS_URL=two.config["IDP_REDIS_URL"],
        IDP_REDIS_PREFIX=two.config["IDP_REDIS_PREFIX"],
        IDP_KEY_ENCRYPTION_KEY=two.config["IDP_KEY_ENCRYPTION_KEY"],
        IDP_INSTANCE_PATH=str(tmp_path),
    )
    idp = str(Path(sys.executable).with_name("idp"))
    rotated = subprocess.run(  # noqa: S603 (our own command)
        [idp, "keys", "rotate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert rotated.returncode == 0, rotated.stderr
    published = set(re.findall(r"published (\S+) ", rotated.stdout))
    assert len(published) == 3  # the next key of each algorithm, and RS256's first one
    for instance in (one, two):
        assert published <= _kids(instance.test_client().get(JWKS))

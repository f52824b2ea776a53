"""Seeding at a tiny scale writes the planned number of rows, usable by the service."""

from __future__ import annotations

import pytest

from bench.seed import BENCH_PASSWORD, Plan, parse_scale, seed, user_email
from idp.accounts.models import User
from idp.accounts.passwords import verify_password
from idp.extensions import db


@pytest.mark.parametrize(("text", "users"), [("10k", 10_000), ("100k", 100_000), ("1m", 10**6)])
def test_scale_names(text, users):
    assert parse_scale(text) == users


def test_seed_writes_the_planned_counts(app_ctx):
    with db.engine.begin() as conn:
        seeded = seed(conn, users=200)
    plan = Plan(users=200)
    expected = {
        "users": 200,
        "organizations": plan.partners + plan.clients,
        "memberships": 200,
        "wabas": plan.clients,
        "channels": plan.channels,
        "token_families": 200,
        "consent_grants": plan.clients,
        "consent_grant_channels": plan.channels,
        "channel_api_keys": 2 * plan.channels,
        "oauth_clients": 3 + plan.partners,
        "oauth_refresh_tokens": 200,
        "oauth_authorization_codes": 200,
    }
    for table, count in expected.items():
        assert seeded.counts[table] == count, table
        assert db.session.scalar(db.text(f"SELECT count(*) FROM {table}")) == count, table


def test_a_seeded_login_code_presented_again_revokes_the_login_it_opened(app_ctx, client):
    from bench.seed import BENCH_REDIRECT_URI, secret_for
    from idp.oauth.models import TokenFamily

    with db.engine.begin() as conn:
        seeded = seed(conn, users=20)
    family = db.session.get(TokenFamily, seeded.family_ids[3])
    replay = {
        "grant_type": "authorization_code",
        "code": secret_for("code", 3),
        "redirect_uri": BENCH_REDIRECT_URI,
        "client_id": family.client_id,
        "code_verifier": "v" * 43,
    }
    response = client.post("/oauth/token", data=replay)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    db.session.expire_all()
    assert db.session.get(TokenFamily, family.id).revoked_reason == "authorization_code_reused"


def test_sampled_api_keys_pass_the_gateway_check(app_ctx):
    from idp.apikeys.service import check_key

    with db.engine.begin() as conn:
        seeded = seed(conn, users=100)
    keys = seeded.extra["api_keys"]
    assert len(keys) == Plan(users=100).channels - 1
    assert {check_key(key).channel_id for key in keys} <= set(seeded.channel_ids[1:])


def test_sampled_partner_clients_authenticate_with_their_secret(app_ctx):
    from idp.oauth.server import query_client

    with db.engine.begin() as conn:
        seeded = seed(conn, users=300)
    client_id, secret = seeded.extra["partner_clients"][-1]
    client = query_client(client_id)
    assert client.check_client_secret(secret)
    assert not client.check_client_secret(secret + "x")
    assert client.check_grant_type("client_credentials")


def test_seeded_accounts_log_in_with_the_bench_password(app_ctx):
    with db.engine.begin() as conn:
        seed(conn, users=20)
    user = db.session.scalar(db.select(User).where(User.email_normalized == user_email(7)))
    assert user is not None and user.is_active
    assert verify_password(user.password_hash, BENCH_PASSWORD)
    assert [m.organization.kind for m in user.memberships] == [user.hub]


@pytest.mark.postgres
def test_seed_uses_copy_on_postgresql(app_ctx):
    assert db.engine.dialect.name == "postgresql"
    with db.engine.begin() as conn:
        seeded = seed(conn, users=50)
    assert db.session.scalar(db.text("SELECT count(*) FROM users")) == seeded.counts["users"]

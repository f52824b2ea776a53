"""``idp clients``: an operator registers the hub frontends and the platform's services."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask_sqlalchemy.session import Session

from idp.audit.models import AuditEvent
from idp.cli import main
from idp.extensions import db
from idp.oauth.models import OAuthClient, sha256_hex
from idp.orgs.models import Organization
from tests.factories import make_org, make_user
from tests.oauth.conftest import BrowserClient, Flow, basic, make_hub_clients, tokens_for

PARTNER_HUB = "https://partner.example.com/auth/callback"
PARTNER_HOME = "https://partner.example.com/"
PARTNER_SET_HUB = [
    "set-hub",
    "--hub",
    "partner",
    "--redirect-uri",
    PARTNER_HUB,
    "--post-logout-redirect-uri",
    PARTNER_HOME,
]
SCOPES = ["--scope", "channels:read", "--scope", "channels:write"]


def run(app, *args):
    return app.test_cli_runner().invoke(main, ["clients", *args])


def events(app) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()
        db.session.expunge_all()
    return rows


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def printed_secret(output: str) -> tuple[str, str]:
    fields = dict(line.split(": ", 1) for line in output.splitlines() if line.startswith("client_"))
    return fields["client_id"], fields["client_secret"]


def client_token(app, client_id: str, secret: str):
    return BrowserClient(app).post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client_id, secret),
    )


def test_set_hub_registers_the_production_redirect_uri_and_a_login_returns_there(app):
    result = run(app, *PARTNER_SET_HUB)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("created partner-hub (Partner Hub)")
    with app.app_context():
        owner = make_user("partner", make_org("partner", "Acme"), "owner")
        db.session.commit()
        flow = Flow(BrowserClient(app), client_id="partner-hub", redirect_uri=PARTNER_HUB)
        assert "id_token" in tokens_for(flow, owner.email)
    [event] = [e for e in events(app) if e.action.startswith("oauth_client.")]
    assert (event.action, event.actor_type, event.actor_id, event.target_id) == (
        "oauth_client.created",
        "system",
        "clients set-hub",
        "partner-hub",
    )
    assert event.after["redirect_uris"] == [PARTNER_HUB]


def test_set_hub_again_replaces_the_uris_and_records_before_and_after(app):
    assert run(app, "set-hub", "--hub", "client", "--redirect-uri", PARTNER_HUB).exit_code == 0
    recorded = events(app)
    same = run(app, "set-hub", "--hub", "client", "--redirect-uri", PARTNER_HUB)
    assert same.exit_code == 0 and same.output.startswith("unchanged client-hub")
    assert len(events(app)) == len(recorded)  # nothing changed, nothing recorded
    new = "https://clients.example.com/cb"
    changed = run(
        app, "set-hub", "--hub", "client", "--redirect-uri", new, "--id-token-alg", "RS256"
    )
    assert changed.exit_code == 0, changed.output
    assert changed.output.startswith("updated client-hub")
    [last] = [e for e in events(app) if e.action == "oauth_client.updated"]
    assert last.before["redirect_uris"] == [PARTNER_HUB]
    assert (last.after["redirect_uris"], last.after["id_token_signed_response_alg"]) == (
        [new],
        "RS256",
    )


def test_set_hub_without_the_algorithm_keeps_the_registered_one(app):
    """Adding a redirect URI must not turn an RS256 relying party's ID tokens into ES256 ones."""
    first = run(
        app, "set-hub", "--hub", "client", "--redirect-uri", PARTNER_HUB, "--id-token-alg", "RS256"
    )
    assert first.exit_code == 0, first.output
    more = "https://clients.example.com/cb"
    again = run(
        app, "set-hub", "--hub", "client", "--redirect-uri", PARTNER_HUB, "--redirect-uri", more
    )
    assert again.exit_code == 0, again.output
    assert "id_token_signed_response_alg: RS256" in again.output
    with app.app_context():
        client = db.session.get(OAuthClient, "client-hub")
        assert (client.redirect_uris, client.id_token_signed_response_alg) == (
            [PARTNER_HUB, more],
            "RS256",
        )
    [last] = [e for e in events(app) if e.action == "oauth_client.updated"]
    assert last.after["id_token_signed_response_alg"] == "RS256"


def test_set_hub_creates_a_hub_client_for_es256_id_tokens_unless_told(app):
    created = run(app, "set-hub", "--hub", "partner", "--redirect-uri", PARTNER_HUB)
    assert created.exit_code == 0, created.output
    assert "id_token_signed_response_alg: ES256" in created.output


def test_the_first_rsa_key_set_hub_makes_is_on_the_audit_log(app):
    from idp.keys.models import SigningKey

    done = run(app, *PARTNER_SET_HUB, "--id-token-alg", "RS256")

    assert done.exit_code == 0, done.output
    with app.app_context():
        [kid] = db.session.scalars(
            db.select(SigningKey.kid).where(SigningKey.algorithm == "RS256")
        ).all()
    published = [e for e in events(app) if e.action == "signing_key.published"]
    assert [(e.target_id, e.actor_id) for e in published] == [(kid, "clients set-hub")]


@pytest.mark.parametrize(
    "uri",
    [
        "http://partner.example.com/cb",  # plain http off loopback
        "https://partner.example.com/cb#top",  # a fragment
        "https://*.example.com/cb",  # a wildcard
        "https://user@partner.example.com/cb",  # user information
        "/relative/cb",
    ],
)
def test_set_hub_refuses_a_uri_registration_would_refuse_and_writes_nothing(app, uri):
    result = run(
        app, "set-hub", "--hub", "partner", "--redirect-uri", PARTNER_HUB, "--redirect-uri", uri
    )
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith("Error: Redirect URIs must be https") and line.endswith(f"{uri})")
    assert count(app, OAuthClient) == 0 and events(app) == []


def test_set_hub_refuses_a_bad_post_logout_uri_and_keeps_the_registered_client(app):
    assert run(app, "set-hub", "--hub", "support", "--redirect-uri", PARTNER_HUB).exit_code == 0
    recorded = events(app)
    bad = run(
        app,
        "set-hub",
        "--hub",
        "support",
        "--redirect-uri",
        "https://new.example.com/cb",
        "--post-logout-redirect-uri",
        "http://evil.example/",
    )
    assert bad.exit_code == 1 and "http://evil.example/" in bad.output
    with app.app_context():
        assert db.session.get(OAuthClient, "support-console").redirect_uris == [PARTNER_HUB]
    assert len(events(app)) == len(recorded)


def test_set_hub_needs_a_known_hub_and_a_new_client_a_redirect_uri(app):
    without = run(app, "set-hub", "--hub", "partner")
    assert without.exit_code == 1
    assert without.output.startswith("Error: A hub client needs at least one redirect URI.")
    assert run(app, "set-hub", "--hub", "nope", "--redirect-uri", PARTNER_HUB).exit_code == 2
    assert count(app, OAuthClient) == 0 and events(app) == []


def _registered(app, hub_client_id: str) -> tuple[list[str], list[str]]:
    with app.app_context():
        client = db.session.get(OAuthClient, hub_client_id)
        return client.redirect_uris, client.post_logout_redirect_uris


def test_set_hub_for_a_new_redirect_uri_keeps_the_post_logout_uris_and_logout_works(app):
    """Re-running set-hub to move the login callback must not break RP-initiated logout."""
    first = run(app, *PARTNER_SET_HUB)
    assert first.exit_code == 0, first.output
    moved = "https://partner.example.com/auth/v2/callback"
    again = run(app, "set-hub", "--hub", "partner", "--redirect-uri", moved)
    assert again.exit_code == 0, again.output
    assert f"post_logout_redirect_uri: {PARTNER_HOME}" in again.output
    assert _registered(app, "partner-hub") == ([moved], [PARTNER_HOME])
    with app.app_context():
        owner = make_user("partner", make_org("partner", "Acme"), "owner")
        db.session.commit()
        flow = Flow(BrowserClient(app), client_id="partner-hub", redirect_uri=moved)
        tokens = tokens_for(flow, owner.email)
    logout = flow.http.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": PARTNER_HOME,
        },
    )
    assert logout.status_code == 302, logout.text
    assert logout.headers["Location"].startswith(PARTNER_HOME)
    [updated] = [e for e in events(app) if e.action == "oauth_client.updated"]
    assert updated.before["post_logout_redirect_uris"] == [PARTNER_HOME]
    assert updated.after["post_logout_redirect_uris"] == [PARTNER_HOME]


def test_set_hub_without_redirect_uris_keeps_them(app):
    assert run(app, "set-hub", "--hub", "client", "--redirect-uri", PARTNER_HUB).exit_code == 0
    result = run(app, "set-hub", "--hub", "client", "--post-logout-redirect-uri", PARTNER_HOME)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("updated client-hub")
    assert _registered(app, "client-hub") == ([PARTNER_HUB], [PARTNER_HOME])


def test_post_logout_uris_are_cleared_only_when_asked(app):
    hub = ["set-hub", "--hub", "support", "--redirect-uri", PARTNER_HUB]
    assert run(app, *hub, "--post-logout-redirect-uri", PARTNER_HOME).exit_code == 0
    both = run(
        app, *hub, "--post-logout-redirect-uri", PARTNER_HOME, "--clear-post-logout-redirect-uris"
    )
    assert both.exit_code == 2 and "cannot be combined" in both.output
    assert _registered(app, "support-console") == ([PARTNER_HUB], [PARTNER_HOME])
    cleared = run(app, *hub, "--clear-post-logout-redirect-uris")
    assert cleared.exit_code == 0, cleared.output
    assert "post_logout_redirect_uri" not in cleared.output
    assert _registered(app, "support-console") == ([PARTNER_HUB], [])
    [updated] = [e for e in events(app) if e.action == "oauth_client.updated"]
    assert updated.before["post_logout_redirect_uris"] == [PARTNER_HOME]
    assert updated.after["post_logout_redirect_uris"] == []


def test_the_platform_secret_is_printed_once_and_authenticates(app):
    result = run(app, "create-platform", "--name", "Provisioning service", *SCOPES)
    assert result.exit_code == 0, result.output
    client_id, secret = printed_secret(result.output)
    with app.app_context():
        row = db.session.get(OAuthClient, client_id)
        support = db.session.scalars(
            db.select(Organization).where(Organization.kind == "support")
        ).one()
        assert row.client_secret_hash == sha256_hex(secret)  # stored hashed only
        assert (row.kind, row.organization_id) == ("platform", support.id)
    token = client_token(app, client_id, secret)
    assert token.status_code == 200, token.get_json()
    assert set(token.get_json()["scope"].split()) == {"channels:read", "channels:write"}
    listing = run(app, "list")
    assert client_id in listing.output and secret not in listing.output
    recorded = events(app)
    assert {e.action for e in recorded} == {"organization.created", "oauth_client.created"}
    assert {e.actor_id for e in recorded} == {"clients create-platform"}
    assert not any(secret in str((e.before, e.after)) for e in recorded)


@contextmanager
def database_gone_after_the_next_commit(app):
    """The server ends every connection of the app right after its next commit."""
    fired: list[bool] = []

    def end_connections(session) -> None:
        if fired or session.in_nested_transaction():  # a savepoint released, not the commit
            return
        fired.append(True)
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )

    sa.event.listen(Session, "after_commit", end_connections)
    try:
        yield
    finally:
        sa.event.remove(Session, "after_commit", end_connections)
        with app.app_context():
            db.engine.dispose()  # the pool's connections were ended
    assert fired


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["create-platform", "rotate-secret"])
def test_a_committed_secret_is_printed_although_the_database_goes_away_at_once(app, command):
    """Once the secret is stored it must be shown: nobody could read it again."""
    args = ["create-platform", "--name", "Billing", "--scope", "channels:read"]
    if command == "rotate-secret":
        client_id, _ = printed_secret(run(app, *args).output)
        args = ["rotate-secret", client_id]
    with database_gone_after_the_next_commit(app):
        result = run(app, *args)
    assert result.exit_code == 0, result.output
    client_id, secret = printed_secret(result.output)
    assert client_token(app, client_id, secret).status_code == 200


def test_a_second_platform_client_joins_the_existing_support_organization(app):
    with app.app_context():
        support = make_org("support", "Support")
        db.session.commit()
        support_id = support.id
    result = run(app, "create-platform", "--name", "Billing", "--scope", "channels:read")
    client_id, _ = printed_secret(result.output)
    with app.app_context():
        assert db.session.get(OAuthClient, client_id).organization_id == support_id
    assert count(app, Organization) == 1


@pytest.mark.parametrize(
    "args, named",
    [
        (["--name", "Svc", "--scope", "api_keys:create"], "api_keys:create"),
        (["--name", "  ", "--scope", "channels:read"], "client name"),
        (["--name", "Svc\x00", "--scope", "channels:read"], "control character"),
        (["--name", "Svc", "--scope", "channels:read", "--organization", "su_nope"], "su_nope"),
    ],
)
def test_create_platform_refuses_bad_input_and_writes_nothing(app, args, named):
    result = run(app, "create-platform", *args)
    assert result.exit_code == 1, result.output
    [line] = result.output.splitlines()
    assert line.startswith("Error: ") and named in line
    assert count(app, OAuthClient) == 0 and count(app, Organization) == 0
    assert events(app) == []


def test_rotating_a_secret_refuses_the_old_one_at_once(app):
    client_id, old = printed_secret(run(app, "create-platform", "--name", "P", *SCOPES).output)
    assert client_token(app, client_id, old).status_code == 200
    rotated = run(app, "rotate-secret", client_id)
    assert rotated.exit_code == 0, rotated.output
    _, new = printed_secret(rotated.output)
    assert new != old
    assert client_token(app, client_id, old).get_json()["error"] == "invalid_client"
    assert client_token(app, client_id, new).status_code == 200
    last = [e for e in events(app) if e.action == "oauth_client.secret_rotated"]
    assert [(e.actor_id, e.target_id) for e in last] == [("clients rotate-secret", client_id)]


def test_a_hub_client_has_no_secret_to_rotate_and_an_unknown_client_is_named(app):
    with app.app_context():
        make_hub_clients()
    hub = run(app, "rotate-secret", "partner-hub")
    assert hub.exit_code == 1 and "public client" in hub.output
    unknown = run(app, "rotate-secret", "oc_nope")
    assert unknown.exit_code == 1
    assert unknown.output == "Error: No such OAuth client. (client_id: oc_nope)\n"
    assert run(app, "delete", "oc_nope").exit_code == 1
    assert events(app) == []


def test_a_deleted_client_and_the_tokens_it_held_are_refused(app):
    client_id, secret = printed_secret(run(app, "create-platform", "--name", "P", *SCOPES).output)
    access = client_token(app, client_id, secret).get_json()["access_token"]
    with app.app_context():
        shop = make_org("client", "Shop")
        db.session.commit()
        path = f"/v1/clients/{shop.id}/wabas"
    http = BrowserClient(app)
    auth = {"Authorization": f"Bearer {access}"}
    assert http.post(path, json={"name": "Before"}, headers=auth).status_code == 201
    deleted = run(app, "delete", client_id)
    assert deleted.exit_code == 0, deleted.output
    assert http.post(path, json={"name": "After"}, headers=auth).status_code == 401
    assert client_token(app, client_id, secret).get_json()["error"] == "invalid_client"
    assert client_id not in run(app, "list").output
    assert run(app, "delete", client_id).exit_code == 1  # gone already
    actions = {(e.action, e.actor_id) for e in events(app)}
    assert ("oauth_client.deleted", "clients delete") in actions
    assert ("token_family.revoked", "clients delete") in actions


@pytest.mark.redis
@pytest.mark.parametrize("command", ["rotate-secret", "delete"])
def test_every_instance_refuses_the_old_secret_on_its_next_request(app, redis_instances, command):
    first, second = redis_instances
    created = first.test_cli_runner().invoke(
        main, ["clients", "create-platform", "--name", "P", *SCOPES]
    )
    client_id, secret = printed_secret(created.output)
    # the second instance has the client in its memory
    assert client_token(second, client_id, secret).status_code == 200
    from tests.instances import Reads

    with Reads(second, "oauth_clients") as reads:
        assert client_token(second, client_id, secret).status_code == 200
    assert reads.count == 0
    done = first.test_cli_runner().invoke(main, ["clients", command, client_id])
    assert done.exit_code == 0, done.output
    assert client_token(second, client_id, secret).get_json()["error"] == "invalid_client"

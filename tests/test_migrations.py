"""The models and the migrations must agree (CI fails on drift)."""

import json
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from idp.extensions import db

# The partner account ``usr_1``, as any migration since the first can hold it.
ONE_ACCOUNT = sa.text(
    "INSERT INTO users (id, email, email_normalized, email_verified, name, hub, status,"
    " security_stamp, created_at) VALUES ('usr_1', 'a@x.example', 'a@x.example', true, 'A',"
    " 'partner', 'active', 's', '2026-01-01 00:00:00')"
)
# The Partner Hub's client, as any migration since the OAuth tables can hold it.
ONE_HUB_CLIENT = sa.text(
    "INSERT INTO oauth_clients (client_id, name, kind, hub, redirect_uris,"
    " post_logout_redirect_uris, scope, created_at) VALUES ('partner-hub', 'Partner Hub',"
    " 'hub', 'partner', '[]', '[]', 'openid', '2026-01-01')"
)


def test_migrations_match_the_models(app_ctx):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": conn.dialect.name == "sqlite"}
        )
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models differ from migrations: {diff}"


def _index_condition(index: dict) -> str | None:
    """The WHERE of a reflected partial index, its spacing and outer parentheses dropped."""
    options = index.get("dialect_options", {})
    condition = options.get("postgresql_where") or options.get("sqlite_where")
    return None if condition is None else " ".join(str(condition).strip("() ").split())


def _leading_columns(inspector, table: str) -> set[tuple[str, ...]]:
    """Every column list that an index of ``table`` can look up by equality on its own.

    A partial index counts only when it leaves out just the rows whose first
    column is NULL: a key lookup (``column = $1``) implies that, so the database
    uses it; any other condition leaves rows the lookup must find.
    """
    leading: set[tuple[str, ...]] = set()
    keys = [inspector.get_pk_constraint(table)] + inspector.get_unique_constraints(table)
    indexes = [{"column_names": k.get("column_names") or k["constrained_columns"]} for k in keys]
    for index in indexes + inspector.get_indexes(table):
        columns = index["column_names"]
        condition = _index_condition(index)
        if condition is not None and condition.lower() != f"{columns[0]} is not null":
            continue
        leading |= {tuple(columns[:n]) for n in range(1, len(columns) + 1)}
    return leading


def test_every_foreign_key_has_an_index_that_leads_with_its_columns(app_ctx):
    """Deleting a row makes the database look for the rows that still name it.

    Without an index behind a reference that check reads the whole referencing
    table once per deleted row: purging families read every authorization code
    per family (194 ms each on the 1m bench database, a batch over three
    minutes), and deleting an account would read every invitation and grant.
    """
    inspector = sa.inspect(db.engine)
    unindexed = []
    for table in inspector.get_table_names():
        leading = _leading_columns(inspector, table)
        unindexed += [
            f"{table}.{','.join(fk['constrained_columns'])} -> {fk['referred_table']}"
            for fk in inspector.get_foreign_keys(table)
            if tuple(fk["constrained_columns"]) not in leading
        ]
    assert unindexed == []


def test_the_app_never_creates_tables_itself():
    import pathlib

    source = "\n".join(p.read_text() for p in pathlib.Path("idp").rglob("*.py"))
    assert "create_all(" not in source


def test_the_schema_history_has_a_single_head(app_ctx):
    from alembic.script import ScriptDirectory
    from flask import current_app

    config = current_app.extensions["migrate"].migrate.get_config()
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"several heads: {heads}; add a merge revision"


def test_the_nonce_index_keeps_one_openid_nonce_per_client_and_clears_the_rest(
    tmp_path, redis_prefix
):
    """0009 on a database with codes: empty, non-OpenID and older repeated nonces go."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from idp import create_app
    from tests.conftest import app_config

    url = f"sqlite:///{tmp_path / 'codes.db'}"
    old = create_app(app_config(url, redis_prefix))
    codes = {  # id: (scope, nonce, created second)
        "ac_older": ("openid", "again", 1),
        "ac_newer": ("openid email", "again", 2),
        "ac_unique": ("openid", "once", 3),
        "ac_empty": ("openid", "", 4),
        "ac_plain": ("email", "whatever", 5),
    }
    with old.app_context():
        upgrade(revision="0008_open_invitations")
        with db.engine.begin() as conn:
            conn.execute(ONE_ACCOUNT)
            conn.execute(ONE_HUB_CLIENT)
            for code_id, (scope, nonce, second) in codes.items():
                conn.execute(
                    sa.text(
                        "INSERT INTO oauth_authorization_codes (id, code_hash, client_id, user_id,"
                        " redirect_uri, scope, nonce, code_challenge, code_challenge_method,"
                        " auth_time, created_at, expires_at) VALUES (:id, :id, 'partner-hub',"
                        " 'usr_1', 'https://hub.example/cb', :scope, :nonce, 'c', 'S256', 0,"
                        " :at, :at)"
                    ),
                    {
                        "id": code_id,
                        "scope": scope,
                        "nonce": nonce,
                        "at": f"2026-01-01 00:00:0{second}",
                    },
                )
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, nonce FROM oauth_authorization_codes"))
            nonces = {code_id: nonce for code_id, nonce in rows}
        db.engine.dispose()
    assert nonces == {
        "ac_older": None,
        "ac_newer": "again",
        "ac_unique": "once",
        "ac_empty": None,
        "ac_plain": None,
    }


def test_emails_already_sent_or_given_up_lose_their_link_secrets(tmp_path, redis_prefix):
    """0012 on a database with messages: final emails are redacted, the rest kept."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from idp import create_app
    from idp.outbox.models import REDACTED_EMAIL_BODY
    from tests.conftest import app_config

    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    old = create_app(app_config(url, redis_prefix))
    messages = {  # id: (kind, status)
        "msg_sent": ("email", "sent"),
        "msg_failed": ("email", "failed"),
        "msg_pending": ("email", "pending"),
        "msg_event": ("webhook", "sent"),
        "msg_event_failed": ("webhook", "failed"),
    }
    with old.app_context():
        upgrade(revision="0011_code_family_index")
        with db.engine.begin() as conn:
            for message_id, (kind, status) in messages.items():
                conn.execute(
                    sa.text(
                        "INSERT INTO outbox_messages (id, kind, recipient, subject, body, status,"
                        " attempts, next_attempt_at, created_at) VALUES (:id, :kind, 'a@x.example',"
                        " 'S', :body, :status, 1, '2026-01-01', '2026-01-01')"
                    ),
                    {"id": message_id, "kind": kind, "status": status, "body": f"?token={kind}"},
                )
        upgrade()
        with db.engine.connect() as conn:
            bodies = dict(conn.execute(sa.text("SELECT id, body FROM outbox_messages")).all())
        db.engine.dispose()
    assert bodies == {
        "msg_sent": REDACTED_EMAIL_BODY,
        "msg_failed": REDACTED_EMAIL_BODY,
        "msg_pending": "?token=email",
        "msg_event": "?token=webhook",
        "msg_event_failed": "?token=webhook",
    }


def test_stored_addresses_take_the_new_normal_form_unless_another_account_holds_it(
    tmp_path, redis_prefix
):
    """0013: forms that case folding left decomposed are composed again, clashes are kept."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from idp import create_app
    from tests.conftest import app_config

    decomposed, composed = "\u03b1\u03b9\u0308\u0301@example.com", "\u03b1\u0390@example.com"
    clash_decomposed, clash_composed = (
        "\u03c5\u03c5\u0308\u0301@example.com",
        "\u03c5\u03b0@example.com",
    )
    url = f"sqlite:///{tmp_path / 'emails.db'}"
    old = create_app(app_config(url, redis_prefix))
    users = {  # id: email_normalized as the old rule stored it
        "usr_folded": decomposed,
        "usr_ascii": "ann@example.com",
        "usr_clash_old": clash_decomposed,
        "usr_clash_new": clash_composed,
    }
    with old.app_context():
        upgrade(revision="0012_redact_final_email_bodies")
        with db.engine.begin() as conn:
            for user_id, normalized in users.items():
                conn.execute(
                    sa.text(
                        "INSERT INTO users (id, email, email_normalized, hub, name, status,"
                        " email_verified, security_stamp, created_at) VALUES (:id, :email,"
                        " :normalized, 'client', 'N', 'active', 1, 's', '2026-01-01')"
                    ),
                    {"id": user_id, "email": normalized, "normalized": normalized},
                )
            conn.execute(
                sa.text(
                    "INSERT INTO email_tokens (id, purpose, email_normalized, token_hash,"
                    " expires_at, created_at) VALUES ('et_1', 'signup', :n, 'h', '2026-01-02',"
                    " '2026-01-01')"
                ),
                {"n": decomposed},
            )
        upgrade()
        with db.engine.connect() as conn:
            stored = dict(conn.execute(sa.text("SELECT id, email_normalized FROM users")).all())
            token = conn.execute(sa.text("SELECT email_normalized FROM email_tokens")).scalar()
        db.engine.dispose()
    assert stored == {
        "usr_folded": composed,
        "usr_ascii": "ann@example.com",
        "usr_clash_old": clash_decomposed,  # kept: support reassigns one of the two
        "usr_clash_new": clash_composed,
    }
    assert token == composed


def _schema(inspector) -> dict:
    """Every table's columns, keys, indexes and checks, in a form two schemas compare in."""
    parts = {
        "columns": lambda c: (c["name"], str(c["type"]), c["nullable"]),
        "foreign keys": lambda fk: (
            fk["constrained_columns"],
            fk["referred_table"],
            fk["options"].get("ondelete"),
        ),
        "indexes": lambda i: (i["name"], i["column_names"], bool(i["unique"]), _index_condition(i)),
        "unique": lambda u: u["column_names"],
        "checks": lambda c: c["sqltext"],
    }
    reflected = {
        "columns": inspector.get_multi_columns(),
        "foreign keys": inspector.get_multi_foreign_keys(),
        "indexes": inspector.get_multi_indexes(),
        "unique": inspector.get_multi_unique_constraints(),
        "checks": inspector.get_multi_check_constraints(),
    }
    keys = inspector.get_multi_pk_constraint()
    return {
        table: {
            "primary key": keys[(schema, table)]["constrained_columns"],
            **{
                part: sorted(shape(item) for item in reflected[part][(schema, table)])
                for part, shape in parts.items()
            },
        }
        for schema, table in keys
    }


def test_each_migration_since_the_merge_goes_back_to_the_schema_before_it(tmp_path, redis_prefix):
    """Downgrading any revision restores the schema that was there before it, on this database.

    The revisions before the merge sit on parallel branches: they are checked
    by a downgrade to an empty database and an upgrade to the head again.
    """
    from alembic.script import ScriptDirectory
    from flask_migrate import downgrade, upgrade

    from idp import create_app
    from tests.conftest import app_config, fresh_database

    with fresh_database(tmp_path) as url:
        scratch = create_app(app_config(url, redis_prefix))
        with scratch.app_context():
            config = scratch.extensions["migrate"].migrate.get_config()
            linear = []
            for script in ScriptDirectory.from_config(config).walk_revisions():
                linear.insert(0, script.revision)
                if script.is_merge_point:
                    break
            schemas = {}
            for revision in linear:
                upgrade(revision=revision)
                schemas[revision] = _schema(sa.inspect(db.engine))
            for revision in reversed(linear[:-1]):
                downgrade(revision=revision)
                assert _schema(sa.inspect(db.engine)) == schemas[revision], revision
            downgrade(revision="base")
            assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
            upgrade()
            assert _schema(sa.inspect(db.engine)) == schemas[linear[-1]]
            db.engine.dispose()


def test_of_repeated_unspent_signup_links_the_newest_of_each_address_stays(tmp_path, redis_prefix):
    """0016 on a database with links: older unspent sign-up links are spent, the rest kept."""
    from flask_migrate import upgrade

    from idp import create_app
    from idp.accounts.models import EmailToken
    from tests.conftest import app_config, fresh_database

    tokens = {  # id: (purpose, address, created second, used second)
        "et_ann_old": ("signup", "ann@example.com", 1, None),
        "et_ann_mid": ("signup", "ann@example.com", 2, None),
        "et_ann_new": ("signup", "ann@example.com", 3, None),
        "et_ann_used": ("signup", "ann@example.com", 4, 5),
        "et_ann_reset": ("password_reset", "ann@example.com", 4, None),
        "et_bob": ("signup", "bob@example.com", 1, None),
        "et_cy_a": ("signup", "cy@example.com", 1, None),
        "et_cy_b": ("signup", "cy@example.com", 1, None),  # same second: the greater id stays
    }
    with fresh_database(tmp_path) as url:
        old = create_app(app_config(url, redis_prefix))
        with old.app_context():
            upgrade(revision="0015_index_user_references")
            with db.engine.begin() as conn:
                for token_id, (purpose, address, created, used) in tokens.items():
                    conn.execute(
                        sa.text(
                            "INSERT INTO email_tokens (id, purpose, email_normalized, token_hash,"
                            " created_at, expires_at, used_at) VALUES (:id, :purpose, :address,"
                            " :id, :created, '2026-01-02', :used)"
                        ),
                        {
                            "id": token_id,
                            "purpose": purpose,
                            "address": address,
                            "created": datetime(2026, 1, 1, 0, 0, created),
                            "used": None if used is None else datetime(2026, 1, 1, 0, 0, used),
                        },
                    )
            upgrade()
            with db.engine.connect() as conn:
                used = dict(conn.execute(sa.select(EmailToken.id, EmailToken.used_at)).all())
            db.engine.dispose()
    assert {token_id for token_id, at in used.items() if at is None} == {
        "et_ann_new",
        "et_ann_reset",
        "et_bob",
        "et_cy_b",
    }
    assert used["et_ann_used"] == datetime(2026, 1, 1, 0, 0, 5)


def test_clients_registered_before_keep_es256_id_tokens(tmp_path, redis_prefix):
    """0017 on a database with a client: it is ES256, and only ES256 or RS256 go in after."""
    import pytest
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from idp import create_app
    from tests.conftest import app_config

    old = create_app(app_config(f"sqlite:///{tmp_path / 'clients.db'}", redis_prefix))
    with old.app_context():
        upgrade(revision="0016_one_signup_link_per_address")
        insert = sa.text(
            "INSERT INTO oauth_clients (client_id, name, kind, hub, redirect_uris,"
            " post_logout_redirect_uris, scope, created_at) VALUES (:id, 'Hub', 'hub',"
            " 'partner', '[]', '[]', 'openid', '2026-01-01')"
        )
        with db.engine.begin() as conn:
            conn.execute(insert, {"id": "partner-hub"})
        upgrade()
        with db.engine.begin() as conn:
            algs = conn.execute(sa.text("SELECT id_token_signed_response_alg FROM oauth_clients"))
            assert algs.scalars().all() == ["ES256"]
            with pytest.raises(sa.exc.IntegrityError):
                conn.execute(
                    sa.text("UPDATE oauth_clients SET id_token_signed_response_alg = 'none'")
                )
        db.engine.dispose()


def test_the_oldest_support_organization_becomes_the_one_made_first(tmp_path, redis_prefix):
    """0020 on a database that already holds two support organizations: both stay, the oldest
    is marked, and no command can make another one."""
    import pytest
    from flask_migrate import upgrade

    from idp import create_app
    from idp.orgs.models import Organization
    from tests.conftest import app_config, fresh_database

    orgs = {  # id: (kind, created second)
        "su_newer": ("support", 2),
        "su_oldest": ("support", 1),
        "pa_partner": ("partner", 0),
    }
    with fresh_database(tmp_path) as url:
        old = create_app(app_config(url, redis_prefix))
        with old.app_context():
            upgrade(revision="0019_revoked_signing_keys")
            with db.engine.begin() as conn:
                for org_id, (kind, at) in orgs.items():
                    conn.execute(
                        sa.text(
                            "INSERT INTO organizations (id, kind, name, created_at)"
                            " VALUES (:id, :kind, :id, :created)"
                        ),
                        {"id": org_id, "kind": kind, "created": datetime(2026, 1, 1, 0, 0, at)},
                    )
            upgrade()
            with db.engine.connect() as conn:
                first = dict(conn.execute(sa.select(Organization.id, Organization.first_of)).all())
                with pytest.raises(sa.exc.IntegrityError):
                    conn.execute(
                        sa.text(
                            "INSERT INTO organizations (id, kind, name, created_at, first_of)"
                            " VALUES ('su_third', 'support', 'Support', '2026-01-02', 'support')"
                        )
                    )
            db.engine.dispose()
    assert first == {"su_oldest": "support", "su_newer": None, "pa_partner": None}


@pytest.mark.parametrize("batch", ["", "2"])
def test_logins_already_there_take_their_sign_in_from_their_code_or_the_login_before(
    tmp_path, redis_prefix, monkeypatch, batch
):
    """0025 and 0026 on a database with logins: a family takes when and how its person signed
    in from the code that opened it, a switched family from the family it came from, however
    far; in one batch or in many; and a fill cut short is finished by the next upgrade."""
    from flask_migrate import downgrade, upgrade

    from idp import create_app
    from tests.conftest import app_config, fresh_database

    families = {  # id: (user, parent)
        "tf_plain": ("usr_1", None),
        "tf_older": ("usr_1", None),  # named by its code's family_id, before codes named it
        "tf_two_step": ("usr_1", None),
        "tf_switched": ("usr_1", "tf_two_step"),
        "tf_switched_again": ("usr_1", "tf_switched"),
        "tf_code_gone": ("usr_1", None),
        "tf_machine": (None, None),
    }
    codes = {  # id: (auth_time, amr, family_id)
        "ac_plain": (1_000, None, None),
        "ac_another": (2_000, json.dumps(["pwd"]), "tf_older"),
        "ac_two_step": (3_000, json.dumps(["pwd", "otp", "mfa"]), None),
    }
    with fresh_database(tmp_path) as url:
        old = create_app(app_config(url, redis_prefix))
        with old.app_context():
            upgrade(revision="0024_one_audit_time_index")
            with db.engine.begin() as conn:
                conn.execute(ONE_ACCOUNT)
                conn.execute(ONE_HUB_CLIENT)
                for family_id, (user_id, parent_id) in families.items():
                    conn.execute(
                        sa.text(
                            "INSERT INTO token_families (id, client_id, user_id, created_at,"
                            " expires_at, parent_id) VALUES (:id, 'partner-hub', :user,"
                            " '2026-01-01', '2026-02-01', :parent)"
                        ),
                        {"id": family_id, "user": user_id, "parent": parent_id},
                    )
                for code_id, (auth_time, amr, family_id) in codes.items():
                    conn.execute(
                        sa.text(
                            "INSERT INTO oauth_authorization_codes (id, code_hash, client_id,"
                            " user_id, redirect_uri, scope, code_challenge,"
                            " code_challenge_method, auth_time, amr, created_at, expires_at,"
                            " family_id) VALUES (:id, :id, 'partner-hub', 'usr_1',"
                            " 'https://hub.example/cb', 'openid', 'c', 'S256', :auth_time, :amr,"
                            " '2026-01-01', '2026-01-01', :family)"
                        ),
                        {"id": code_id, "auth_time": auth_time, "amr": amr, "family": family_id},
                    )
            monkeypatch.setenv("IDP_MIGRATION_BATCH", batch)
            upgrade()
            filled = _sign_ins()
            # As if the fill had stopped half-way: the database is left at 0025.
            with db.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE token_families SET auth_time = NULL, amr = NULL"
                        " WHERE id IN ('tf_switched_again', 'tf_older')"
                    )
                )
            downgrade(revision="0025_family_sign_in")
            upgrade()
            refilled = _sign_ins()
            db.engine.dispose()
    two_step = (3_000, ["pwd", "otp", "mfa"])
    assert (
        filled
        == refilled
        == {
            "tf_plain": (1_000, None),  # a code from before amr was kept: a password
            "tf_older": (2_000, ["pwd"]),
            "tf_two_step": two_step,
            "tf_switched": two_step,
            "tf_switched_again": two_step,
            "tf_code_gone": (None, None),
            "tf_machine": (None, None),
        }
    )


def _sign_ins() -> dict:
    """Each family's (auth_time, amr)."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, auth_time, amr FROM token_families"))
        return {
            family_id: (auth_time, json.loads(amr) if isinstance(amr, str) else amr)
            for family_id, auth_time, amr in rows
        }


@pytest.mark.parametrize("batch", ["none", "0", "-5", "²"])
def test_a_batch_size_that_is_no_whole_number_stops_the_upgrade_with_its_name(
    tmp_path, redis_prefix, monkeypatch, batch
):
    from flask_migrate import upgrade

    from idp import create_app
    from tests.conftest import app_config

    old = create_app(app_config(f"sqlite:///{tmp_path / 'batch.db'}", redis_prefix))
    with old.app_context():
        upgrade(revision="0025_family_sign_in")
        monkeypatch.setenv("IDP_MIGRATION_BATCH", batch)
        with pytest.raises(SystemExit, match="IDP_MIGRATION_BATCH must be a whole number"):
            upgrade()
        with db.engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        db.engine.dispose()
    assert version == "0025_family_sign_in"


def test_resolved_conflicts_recorded_before_0027_name_their_addresses_by_digest_only(
    tmp_path, redis_prefix
):
    """Events of resolved email conflicts held both addresses in clear; after the upgrade
    they hold the digests an investigator's lookup finds, the rest of every event as it was,
    and the log refuses changes again."""
    from flask_migrate import upgrade

    from idp import create_app
    from idp.accounts.emails import email_hmac
    from tests.conftest import app_config, fresh_database

    events = {
        "ev_resolved": (
            "email_conflict.resolved",
            {"status": "email_conflict", "claimed_email": "Sam@Legacy.example"},
            {"status": "active", "email": "sam.shop@legacy.example"},
        ),
        "ev_verified": ("account.email_verified", None, {"email_hmac": "d" * 64}),
    }
    with fresh_database(tmp_path) as url:
        app = create_app(app_config(url, redis_prefix))
        with app.app_context():
            upgrade(revision="0026_fill_family_sign_in")
            with db.engine.begin() as conn:
                for event_id, (action, before, after) in events.items():
                    conn.execute(
                        sa.text(
                            "INSERT INTO audit_events (id, occurred_at, action, actor_type,"
                            " target_type, target_id, before, after) VALUES (:id,"
                            " '2026-01-01', :action, 'user', 'user', 'usr_1', :before, :after)"
                        ),
                        {
                            "id": event_id,
                            "action": action,
                            "before": None if before is None else json.dumps(before),
                            "after": json.dumps(after),
                        },
                    )
            upgrade()
            with db.engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT id, before, after FROM audit_events"))
                stored = {
                    event_id: tuple(
                        json.loads(part) if isinstance(part, str) else part
                        for part in (before, after)
                    )
                    for event_id, before, after in rows
                }
            expected_digests = (
                email_hmac("sam@legacy.example"),
                email_hmac("sam.shop@legacy.example"),
            )
            refused, dialect = None, db.engine.dialect.name
            if dialect == "postgresql":
                try:
                    with db.engine.begin() as conn:
                        conn.execute(sa.text("DELETE FROM audit_events"))
                except sa.exc.DBAPIError as exc:
                    refused = "append-only" in str(exc)
            db.engine.dispose()
    assert stored == {
        "ev_resolved": (
            {"status": "email_conflict", "claimed_email_hmac": expected_digests[0]},
            {"status": "active", "email_hmac": expected_digests[1]},
        ),
        "ev_verified": (None, {"email_hmac": "d" * 64}),
    }
    assert "@" not in json.dumps(stored)
    assert refused is (True if dialect == "postgresql" else None)  # its trigger is on again

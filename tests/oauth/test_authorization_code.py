"""RFC 6749 section 4.1 + RFC 7636 + RFC 9207: the authorization code grant."""

from __future__ import annotations

from idp.extensions import db
from idp.keys.service import verify_jwt
from tests.oauth.conftest import HUB_REDIRECT, query_of


def test_a_partner_user_gets_a_code_with_state_and_iss_and_a_role_scoped_token(
    app, partner_world, flow
):
    owner = partner_world["owner"]
    code = flow.code_for(owner.email)
    response = flow.exchange(code)
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] <= 900
    claims = verify_jwt(body["access_token"], typ="at+jwt")
    assert claims["sub"] == owner.id
    assert claims["hub"] == "partner"
    assert claims["org"] == partner_world["acme"].id
    assert claims["roles"] == ["owner"]
    assert claims["client_id"] == "partner-hub"
    id_token = verify_jwt(body["id_token"], audience="partner-hub")
    assert id_token["nonce"] == "nonce-abc"
    assert id_token["email"] == owner.email
    assert body["refresh_token"]


def test_codes_are_long_url_safe_and_never_repeat(app, partner_world, flow):
    import re

    from tests.oauth.conftest import tokens_for

    tokens_for(flow, partner_world["owner"].email)
    codes = {
        query_of(type(flow)(flow.http, nonce=f"n{i}").authorize().headers["Location"])["code"]
        for i in range(20)
    }
    assert len(codes) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{48}", code) for code in codes)


def test_the_redirect_carries_state_and_issuer(app, partner_world, flow):
    response = flow.login(partner_world["owner"].email)
    response = flow.http.get(response.headers["Location"])
    location = response.headers["Location"]
    assert location.startswith(HUB_REDIRECT + "?")
    params = query_of(location)
    assert params["state"] == "state-123"
    assert params["iss"] == app.config["IDP_ISSUER"]


def test_a_code_works_once_and_a_replay_revokes_what_it_issued(app, partner_world, flow):
    code = flow.code_for(partner_world["owner"].email)
    first = flow.exchange(code)
    assert first.status_code == 200
    replay = flow.exchange(code)
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"
    refreshed = flow.http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.get_json()["refresh_token"],
            "client_id": "partner-hub",
        },
    )
    assert refreshed.get_json()["error"] == "invalid_grant"
    db.session.remove()


def test_a_replayed_code_from_before_family_naming_revokes_its_linked_family(
    app, partner_world, flow
):
    """Codes exchanged before families were named after them name their family in ``family_id``."""
    from idp.oauth.models import AuthorizationCode, TokenFamily, sha256_hex
    from idp.oauth.tokens import open_family

    owner = partner_world["owner"]
    code = flow.code_for(owner.email)
    assert flow.exchange(code).status_code == 200
    row = db.session.scalar(
        db.select(AuthorizationCode).where(AuthorizationCode.code_hash == sha256_hex(code))
    )
    legacy = open_family(
        client_id="partner-hub", user_id=owner.id, organization_id=row.organization_id, lifetime=60
    )
    row.family_id = legacy.id  # as the link an earlier exchange wrote
    db.session.commit()
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"
    db.session.expire_all()
    assert db.session.get(TokenFamily, legacy.id).revoked_reason == "authorization_code_reused"
    db.session.remove()


def test_each_sign_in_writes_its_rows_with_ids_in_the_order_they_were_written(
    app, partner_world, flow
):
    """Codes, families and refresh tokens get time-ordered ids (their inserts append)."""
    import time

    from idp.audit.models import AuditEvent
    from idp.oauth.models import AuthorizationCode, RefreshToken, TokenFamily, sha256_hex
    from tests.oauth.conftest import tokens_for

    tokens_for(flow, partner_world["owner"].email)  # logged in: the next codes come at once
    rows = []
    for i in range(5):
        again = type(flow)(flow.http, nonce=f"again-{i}")
        code = query_of(again.authorize().headers["Location"])["code"]
        refresh_token = again.exchange(code).get_json()["refresh_token"]
        code_row = db.session.scalar(
            db.select(AuthorizationCode).where(AuthorizationCode.code_hash == sha256_hex(code))
        )
        token_row = db.session.scalar(
            db.select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(refresh_token))
        )
        rows.append((code_row.id, token_row.family_id, token_row.id))
        time.sleep(0.002)  # the next sign-in starts in a later millisecond
    for kind in zip(*rows, strict=True):
        assert list(kind) == sorted(kind) and len(set(kind)) == 5
    assert all(db.session.get(TokenFamily, family_id) for _, family_id, _ in rows)
    events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.occurred_at)).all()
    assert [e.id for e in events] == sorted(e.id for e in events)
    db.session.remove()


def _code(partner_world, flow) -> str:
    return flow.code_for(partner_world["owner"].email)


def test_exchanging_without_the_verifier_is_refused(app, partner_world, flow):
    response = flow.exchange(_code(partner_world, flow), code_verifier=None)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_a_wrong_verifier_is_refused(app, partner_world, flow):
    response = flow.exchange(_code(partner_world, flow), code_verifier="x" * 64)
    assert response.get_json()["error"] == "invalid_grant"


def test_the_redirect_uri_must_match_the_authorization_request(app, partner_world, flow):
    response = flow.exchange(_code(partner_world, flow), redirect_uri=HUB_REDIRECT + "/other")
    assert response.get_json()["error"] == "invalid_grant"


def test_a_code_is_bound_to_its_client(app, partner_world, flow):
    response = flow.exchange(_code(partner_world, flow), client_id="client-hub")
    assert response.get_json()["error"] == "invalid_grant"


def test_an_expired_code_is_refused(app, partner_world, flow):
    from idp.oauth.models import AuthorizationCode
    from idp.timeutil import utcnow

    code = _code(partner_world, flow)
    db.session.execute(db.update(AuthorizationCode).values(expires_at=utcnow()))
    db.session.commit()
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"


def test_an_unknown_code_is_refused(app, partner_world, flow):
    assert flow.exchange("not-a-code").get_json()["error"] == "invalid_grant"


def test_an_unknown_grant_type_is_refused(app, flow):
    response = flow.http.post("/oauth/token", data={"grant_type": "password", "username": "x"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_codes_are_stored_hashed_and_short_lived(app, partner_world, flow):
    from idp.oauth.models import AuthorizationCode

    code = _code(partner_world, flow)
    row = db.session.scalars(db.select(AuthorizationCode)).one()
    assert code not in (row.code_hash, row.id)
    assert (row.expires_at - row.created_at).total_seconds() <= 600


def test_a_disabled_account_cannot_exchange_its_code(app, partner_world, flow):
    code = _code(partner_world, flow)
    partner_world["owner"].status = "disabled"
    db.session.commit()
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"


def test_a_partner_user_of_several_partners_picks_one_and_the_last_one_comes_first(
    app, partner_world, flow
):
    consultant = partner_world["consultant"]
    globex = partner_world["globex"]
    tokens = flow.exchange(flow.code_for(consultant.email, globex.id)).get_json()
    claims = verify_jwt(tokens["access_token"], typ="at+jwt")
    assert (claims["org"], claims["roles"]) == (globex.id, ["owner"])

    second = type(flow)(flow.http, nonce="another-nonce")
    response = second.authorize()
    picker = flow.http.get(response.headers["Location"])
    assert picker.status_code == 200, response.headers["Location"]
    assert "Acme" in picker.text, picker.text
    assert picker.text.index("Globex") < picker.text.index("Acme")
    assert "(last used)" in picker.text


def test_a_new_family_row_names_every_column_of_the_table(app):
    """PostgreSQL writes the row through a statement that binds every column."""
    from idp.oauth.models import TokenFamily
    from idp.oauth.tokens import new_family_row

    row = new_family_row(client_id="c", user_id=None, organization_id=None, lifetime=60)
    assert set(row) == {column.name for column in TokenFamily.__table__.c}

"""Turning two-step sign-in on offers to sign out every other browser and app (ASVS V7.4.3)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.mfa.models import TwoStepSecret
from idp.oauth.models import TokenFamily
from idp.outbox.models import OutboxMessage
from tests.mfa.helpers import SECRET, code_at, enrol, post_step, start
from tests.oauth.conftest import BrowserClient, Flow, refresh, tokens_for
from tests.test_hostile_forms import login

BOX = re.compile(r'<input type="checkbox" id="sign-out-others" name="sign_out_others"[^>]*>')


def _signed_in(browser) -> bool:
    return browser.get("/login/done").status_code == 200


def _events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    query = sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list(db.session.scalars(query))


def _signed_in_with_tokens(app, world, nonce: str) -> tuple[Flow, dict]:
    """A browser signed in to ``world``'s owner through a hub, with its tokens."""
    flow = Flow(BrowserClient(app), nonce=nonce)
    return flow, tokens_for(flow, world["owner"].email, world["acme"].id)


def test_the_box_is_offered_ticked_with_its_label(app, partner_world):
    page = start(login(app, partner_world["owner"].email))

    assert page.status_code == 200
    box = BOX.search(page.text)
    assert box and " checked" in box.group(0)
    assert re.search(
        r'<label class="choice" for="sign-out-others">\s*<input[^>]*>\s*'
        r"Sign me out of every other browser and app</label>",
        page.text,
    )


def test_ticked_it_signs_out_every_other_browser_and_app_but_this_one(app, partner_world):
    owner = partner_world["owner"]
    elsewhere, their_tokens = _signed_in_with_tokens(app, partner_world, "theirs")  # phished
    third = login(app, owner.email)
    here, our_tokens = _signed_in_with_tokens(app, partner_world, "ours")

    enrol(here.http, sign_out_others="yes")

    assert _signed_in(here.http)
    assert not _signed_in(elsewhere.http) and not _signed_in(third)
    assert refresh(elsewhere.http, their_tokens["refresh_token"]).status_code == 400
    assert refresh(here.http, our_tokens["refresh_token"]).status_code == 200
    db.session.expire_all()
    (family,) = db.session.scalars(
        sa.select(TokenFamily).where(
            TokenFamily.user_id == owner.id, TokenFamily.revoked_at.is_not(None)
        )
    )
    assert family.revoked_reason == "ended_by_user"
    (ended,) = _events("account.sessions_ended")
    assert (ended.actor_type, ended.actor_id, ended.target_id) == ("user", owner.id, owner.id)
    assert ended.after == {"via": "two_step_enabled", "logins_ended": 2}
    assert any(e.target_id == family.id for e in _events("token_family.revoked"))
    body = db.session.scalar(
        sa.select(OutboxMessage.body).where(
            OutboxMessage.recipient == owner.email, OutboxMessage.subject.contains("turned on")
        )
    )
    assert "Every other browser and app that was signed in" in body


def test_unticked_the_other_browsers_stay_signed_in(app, partner_world):
    owner = partner_world["owner"]
    elsewhere, their_tokens = _signed_in_with_tokens(app, partner_world, "theirs")
    here = login(app, owner.email)
    page = start(here)
    assert BOX.search(page.text)  # offered, and unticked by the person
    secret = SECRET.search(page.text).group(1)

    done = post_step(here, "confirm", code=code_at(secret))  # an unticked box sends nothing

    assert done.status_code == 200 and "signed out" not in done.text
    assert _signed_in(here) and _signed_in(elsewhere.http)
    assert refresh(elsewhere.http, their_tokens["refresh_token"]).status_code == 200
    assert _events("account.sessions_ended") == []
    assert _events("account.two_step_enabled")


def test_a_value_the_box_never_sends_is_refused_and_nothing_changes(app, partner_world):
    owner = partner_world["owner"]
    elsewhere = login(app, owner.email)
    here = login(app, owner.email)
    secret = SECRET.search(start(here).text).group(1)

    for sent in ("no", "", ["yes", "yes"]):
        refused = post_step(here, "confirm", code=code_at(secret), sign_out_others=sent)
        assert refused.status_code == 422, sent
        assert 'id="sign-out-others-error"' in refused.text
        assert 'aria-describedby="sign-out-others-error"' in BOX.search(refused.text).group(0)

    db.session.expire_all()
    assert db.session.get(TwoStepSecret, owner.id).enabled_at is None
    assert _signed_in(here) and _signed_in(elsewhere)
    assert _events("account.two_step_enabled") == []


def test_unticked_after_a_wrong_code_the_box_stays_unticked(app, partner_world):
    here = login(app, partner_world["owner"].email)
    secret = SECRET.search(start(here).text).group(1)

    wrong = post_step(here, "confirm", code="000000" if code_at(secret) != "000000" else "1")

    assert wrong.status_code == 422
    assert " checked" not in BOX.search(wrong.text).group(0)

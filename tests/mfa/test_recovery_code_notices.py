"""The address hears of new recovery codes and of a sign-in with one, and never gets a code."""

from __future__ import annotations

import re

import sqlalchemy as sa

from idp.extensions import db
from idp.mfa.models import RecoveryCode
from idp.mfa.recovery import _hash, _normalized
from idp.timeutil import utcnow
from tests.accounts.helpers import deliver_mail
from tests.factories import PASSWORD
from tests.fixtures.smtp import body_of
from tests.mfa.helpers import RECOVERY, code_at, enrol, password_then, post_step, second_step
from tests.oauth.conftest import BrowserClient
from tests.test_hostile_forms import login

# A recovery code as shown (XXXX-XXXX-XXXX-XXXX) or typed without its dashes.
A_CODE = re.compile(r"[A-Z2-7]{4}-?[A-Z2-7]{4}-?[A-Z2-7]{4}-?[A-Z2-7]{4}")


def _received(app, smtp_server, to: str, subject: str):
    """The one message to ``to`` whose subject contains ``subject``, once delivered."""
    mailbox, smtp_url = smtp_server
    deliver_mail(app, smtp_url)
    messages = mailbox.wait_for(to)
    found = [m for m in messages if subject in m["Subject"]]
    assert len(found) == 1, [m["Subject"] for m in messages]
    assert found[0]["X-Envelope-To"] == to and found[0]["To"] == to
    return found[0]


def _no_code_in(body: str, codes: list[str]) -> None:
    assert not A_CODE.search(body), body
    assert not any(code.replace("-", "") in body.replace("-", "") for code in codes)


def test_new_recovery_codes_are_told_to_the_address_without_them(app, partner_world, smtp_server):
    owner = partner_world["owner"]
    browser = login(app, owner.email)
    secret, old_codes = enrol(browser)

    page = post_step(browser, "codes", current_password=PASSWORD, code=code_at(secret, 1))

    assert page.status_code == 200
    new_codes = RECOVERY.findall(page.text)
    assert len(new_codes) == 10
    notice = _received(app, smtp_server, owner.email, "New recovery codes were made")
    body = body_of(notice)
    assert "recovery codes you had before no longer work" in body
    assert "contact support" in body
    _no_code_in(body, old_codes + new_codes)


def test_a_sign_in_with_a_recovery_code_is_told_with_how_many_are_left(
    app, partner_world, smtp_server
):
    owner = partner_world["owner"]
    _, codes = enrol(login(app, owner.email))
    browser = BrowserClient(app)
    location = password_then(browser, owner.email).headers["Location"]

    assert second_step(browser, location, recovery_code=codes[0]).status_code == 200

    notice = _received(app, smtp_server, owner.email, "A recovery code was used to sign in")
    body = body_of(notice)
    assert "with one of its recovery codes" in body and "9 recovery codes are left" in body
    assert "make new ones" not in body  # plenty left
    _no_code_in(body, codes)


def test_with_few_recovery_codes_left_the_notice_says_to_make_new_ones(
    app, partner_world, smtp_server
):
    owner = partner_world["owner"]
    _, codes = enrol(login(app, owner.email))
    # Seven spent already (earlier sign-ins): the next one leaves two.
    hashes = [_hash(owner.id, _normalized(code)) for code in codes[:7]]
    db.session.execute(
        sa.update(RecoveryCode)
        .where(RecoveryCode.user_id == owner.id, RecoveryCode.code_hash.in_(hashes))
        .values(used_at=utcnow())
    )
    db.session.commit()
    browser = BrowserClient(app)
    location = password_then(browser, owner.email).headers["Location"]

    assert second_step(browser, location, recovery_code=codes[7]).status_code == 200

    body = body_of(_received(app, smtp_server, owner.email, "A recovery code was used"))
    assert "2 recovery codes are left" in body and "make new ones" in body
    _no_code_in(body, codes)

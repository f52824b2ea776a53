"""Client sign-up: same answer for free and taken addresses, account created only by the link."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from idp.accounts.models import EmailToken, User
from idp.accounts.passwords import verify_password
from idp.accounts.service import start_signup
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.login.models import LoginFailure
from idp.orgs.models import Membership, Organization
from idp.outbox.models import OutboxMessage
from tests.accounts.helpers import (
    csrf_of,
    deliver_mail,
    queued_link_secrets,
    received_link,
    submit_form,
)
from tests.factories import make_org, make_user
from tests.fixtures.smtp import body_of

PASSWORD = "correct horse battery staple"
WIDE_PASSWORD1 = "ｐａｓｓｗｏｒｄ１"
OWN = "ann.smith@example.com"


def _signup(client, email="ann@example.com", password=PASSWORD, name="Ann's Bakery"):
    return client.post(
        "/v1/signup", json={"email": email, "password": password, "business_name": name}
    )


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _verify(client, link: str, password: str = PASSWORD):
    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    token = link.split("token=", 1)[1]
    return client.post(
        "/signup/verify", data={"csrf_token": csrf_of(html), "token": token, "password": password}
    )


def test_signup_emails_a_link_and_the_link_creates_the_client_and_its_owner(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    resp = _signup(client, email="  Ann@Example.COM ")
    assert resp.status_code == 202
    assert "inbox" in resp.get_json()["detail"]
    with app.app_context():
        assert _count(User) == 0 and _count(Organization) == 0  # nothing before the link

    assert deliver_mail(app, smtp_url)["sent"] == 1
    message = mailbox.wait_for("ann@example.com")[0]
    assert message["Subject"].startswith("Confirm your email address")
    link = received_link(mailbox, "ann@example.com")
    assert link.startswith("/signup/verify?token=")
    page = client.get(link)
    assert "Ann&#39;s Bakery" in page.get_data(as_text=True)
    with app.app_context():
        assert _count(User) == 0  # looking at the page (or a mail scanner) creates nothing

    done = _verify(client, link)
    assert done.status_code == 200
    assert "Your account is ready" in done.get_data(as_text=True)
    assert "logged in" in done.get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(sa.select(User))
        assert user.email_normalized == "ann@example.com"
        assert user.hub == "client" and user.email_verified
        assert user.password_hash.startswith("$argon2id$")
        membership = db.session.scalar(sa.select(Membership))
        assert membership.user_id == user.id and membership.role == "owner"
        org = db.session.get(Organization, membership.organization_id)
        assert org.kind == "client" and org.name == "Ann's Bakery" and org.id.startswith("cl_")
        actions = db.session.scalars(sa.select(AuditEvent.action)).all()
        assert "account.created" in actions


def test_a_taken_address_gets_the_same_answer_and_an_email_naming_the_hub(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    with app.app_context():
        make_user("partner", make_org("partner"), email="ann@example.com")
        db.session.commit()
    free = _signup(client, email="bob@example.com")
    taken = _signup(client, email="ANN@example.com")
    assert taken.status_code == free.status_code == 202
    assert taken.get_json() == free.get_json()

    deliver_mail(app, smtp_url)
    body = body_of(mailbox.wait_for("ann@example.com")[0])
    assert "Partner Hub" in body
    assert "/password-reset" in body and "another email address" in body and "support" in body
    assert "/signup/verify" not in body
    with app.app_context():
        assert _count(User) == 1 and _count(EmailToken) == 1  # only bob's pending sign-up


@pytest.mark.parametrize(
    "held, typed",
    [
        ("\u03b1\u0390@example.com", "\u0391\u03aa\u0301@EXAMPLE.COM"),  # αΐ / ΑΪ́
        ("\u0391\u03aa\u0301@example.com", "\u03b1\u0390@example.com"),
        ("\u03c5\u03b0@example.com", "\u03a5\u03ab\u0301@example.com"),  # υΰ / ΥΫ́
    ],
)
def test_every_case_of_an_address_is_the_same_account(app_ctx, held, typed):
    # Upper-case ΐ folds to ϊ and a separate accent, lower-case ΐ stays one character.
    make_user("client", make_org("client"), "owner", email=held)
    db.session.commit()
    start_signup(typed, PASSWORD, "Second Business")
    assert db.session.scalar(sa.select(EmailToken).where(EmailToken.purpose == "signup")) is None


def test_the_link_works_once(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _signup(client)
    deliver_mail(app, smtp_url)
    link = received_link(mailbox, "ann@example.com")
    assert _verify(client, link).status_code == 200
    again = client.get(link)
    assert again.status_code == 400
    assert "invalid or has expired" in again.get_data(as_text=True)


def test_an_expired_link_creates_nothing(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _signup(client)
    deliver_mail(app, smtp_url)
    link = received_link(mailbox, "ann@example.com")
    with app.app_context():
        token = db.session.scalar(sa.select(EmailToken))
        token.expires_at -= timedelta(days=2)
        db.session.commit()
    resp = client.post("/signup/verify", data={"token": link.split("token=")[1]})
    assert resp.status_code == 400  # CSRF aside, a stale link never creates an account
    with app.app_context():
        assert _count(User) == 0


@pytest.mark.parametrize("taken", [False, True])
def test_the_signup_email_carries_no_text_the_requester_chose(app, client, taken):
    # Anyone can make the service mail any address; text of their choosing in
    # that mail (the business name, up to 200 characters with links) would come
    # from the service's own sender: a phishing relay.
    lure = "URGENT: your account is suspended, verify at https://evil.example/login"
    if taken:
        with app.app_context():
            make_user("client", make_org("client"), email="victim@example.com")
            db.session.commit()
    assert _signup(client, email="victim@example.com", name=lure).status_code == 202
    with app.app_context():
        message = db.session.scalar(sa.select(OutboxMessage))
        assert "evil.example" not in message.body and "URGENT" not in message.body
        assert "evil.example" not in message.subject


def test_a_link_whose_address_got_an_account_meanwhile_ends_on_a_clear_page(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    _signup(client, email="Ann@Example.com")
    deliver_mail(app, smtp_url)
    link = received_link(mailbox, "ann@example.com")
    page = client.get(link)
    with app.app_context():  # e.g. a partner invitation accepted meanwhile
        make_user("partner", make_org("partner"), email="ann@example.com")
        db.session.commit()
    resp = client.post(
        "/signup/verify",
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "token": link.split("=")[1],
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 409
    assert "already has an account" in resp.get_data(as_text=True)
    with app.app_context():
        assert _count(User) == 1 and _count(Organization) == 1  # the partner's only


def test_a_newer_signup_spends_the_older_links_of_the_address(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _signup(client, email="Ann@Example.com", name="First")
    _signup(client, email="ann@example.COM", name="Second")
    _signup(client, email="bob@example.com", name="Other address")
    deliver_mail(app, smtp_url)
    first, second = (
        received_link(mailbox, "ann@example.com", 0),
        received_link(mailbox, "ann@example.com", 1),
    )
    assert "Only the latest sign-up link" in body_of(mailbox.wait_for("ann@example.com")[0])
    stale = client.get(first)
    assert stale.status_code == 400
    assert "invalid or has expired" in stale.get_data(as_text=True)
    assert _verify(client, second).status_code == 200
    assert _verify(client, received_link(mailbox, "bob@example.com")).status_code == 200
    with app.app_context():
        names = set(db.session.scalars(sa.select(Organization.name)))
        assert names == {"Second", "Other address"}


STRANGER_PASSWORD = "the stranger's own passphrase"


@pytest.mark.parametrize("stranger_goes", ["first", "last"])
def test_a_strangers_pending_signup_cannot_set_the_password_of_my_account(
    app, client, smtp_server, stranger_goes
):
    mailbox, smtp_url = smtp_server
    if stranger_goes == "first":
        _signup(client, password=STRANGER_PASSWORD, name="Stranger's shop")
    _signup(client, password=PASSWORD)  # Ann's own sign-up
    if stranger_goes == "last":  # the stranger's link is then the newest one
        _signup(client, password=STRANGER_PASSWORD, name="Stranger's shop")
    deliver_mail(app, smtp_url)
    strangers = received_link(mailbox, "ann@example.com", 0 if stranger_goes == "first" else 1)

    # Ann opens the stranger's link (the two emails look alike) and types her password.
    page = client.get(strangers)
    if stranger_goes == "first":
        assert page.status_code == 400  # spent by Ann's newer sign-up
    else:
        assert page.status_code == 200
        resp = client.post(
            "/signup/verify",
            data={
                "csrf_token": csrf_of(page.get_data(as_text=True)),
                "token": strangers.split("token=", 1)[1],
                "password": PASSWORD,
            },
        )
        assert resp.status_code == 422
        assert "not the password chosen" in resp.get_data(as_text=True)
    with app.app_context():
        assert _count(User) == 0 and _count(Organization) == 0
    with client.session_transaction() as session:
        assert "uid" not in session

    # Nothing opens with the stranger's password: not the login, not the link.
    login = submit_form(
        client, "/login?hub=client", email="ann@example.com", password=STRANGER_PASSWORD
    )
    assert login.status_code == 401
    # Ann signs up again; her new link, with her password, gives her an account that
    # the stranger's password does not open.
    _signup(client, password=PASSWORD)
    deliver_mail(app, smtp_url)
    latest = received_link(mailbox, "ann@example.com", 2)
    assert client.get(strangers).status_code == 400  # spent by Ann's newer sign-up
    assert _verify(client, latest).status_code == 200
    with app.app_context():
        user = db.session.scalar(sa.select(User))
        assert verify_password(user.password_hash, PASSWORD)
        assert not verify_password(user.password_hash, STRANGER_PASSWORD)
        assert db.session.scalar(sa.select(Organization.name)) == "Ann's Bakery"


def test_a_wrong_password_is_refused_and_leaves_the_link_usable(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _signup(client)
    deliver_mail(app, smtp_url)
    link = received_link(mailbox, "ann@example.com")
    page = client.get(link)
    html = page.get_data(as_text=True)
    assert 'type="password"' in html and 'name="password"' in html
    for typed in ("not the password at all", ""):
        wrong = _verify(client, link, typed)
        assert wrong.status_code == 422
        text = wrong.get_data(as_text=True)
        assert "not the password chosen" in text and 'id="password-error"' in text
        assert "Ann&#39;s Bakery" in text  # the same page, to try again
    with app.app_context():
        assert _count(User) == 0
        assert db.session.scalar(sa.select(EmailToken.used_at)) is None
        failed = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "login.failed")
        ).all()
        assert [event.reason for event in failed] == ["bad_credentials"] * 2
        assert failed[0].after["via"] == "signup" and "ann@" not in str(failed[0].after)
    assert _verify(client, link).status_code == 200


def test_guessing_the_password_of_a_link_is_slowed_by_the_failed_login_counters(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    _signup(client)
    deliver_mail(app, smtp_url)
    link = received_link(mailbox, "ann@example.com")
    statuses = [_verify(client, link, f"guess number {i}").status_code for i in range(3)]
    assert statuses == [422] * 3
    waiting = _verify(client, link)  # even the right password waits its turn
    assert waiting.status_code == 429
    assert int(waiting.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in waiting.get_data(as_text=True)
    with app.app_context():
        assert _count(User) == 0
        assert db.session.scalar(sa.select(EmailToken.used_at)) is None
        # The same counters as a login: the address's account key is counting.
        assert _count(LoginFailure) >= 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address", "password": PASSWORD, "business_name": "X"}, "email"),
        ({"email": "a@example.com", "password": "short", "business_name": "X"}, "password"),
        ({"email": "a@example.com", "password": "password123", "business_name": "X"}, "password"),
        # "password1" typed with a full-width (CJK) layout: the same password under NFKC.
        ({"email": "a@example.com", "password": WIDE_PASSWORD1, "business_name": "X"}, "password"),
        ({"email": "a@example.com", "password": "PASSWORD1 ", "business_name": "X"}, "password"),
        # The address (or its part before the @) is a context-specific word, not a password.
        ({"email": OWN, "password": OWN, "business_name": "X"}, "password"),
        ({"email": OWN, "password": "Ann.Smith@EXAMPLE.com", "business_name": "X"}, "password"),
        ({"email": OWN, "password": "ann.smith", "business_name": "X"}, "password"),
        (
            {
                "email": "ann.smith@bücher.example",
                "password": "ann.smith@xn--bcher-kva.example",
                "business_name": "X",
            },
            "password",
        ),
        # So are the business's name and the service's, with or without digits and marks.
        (
            {
                "email": "a@example.com",
                "password": "Blue Bakery 2024",
                "business_name": "Blue Bakery",
            },
            "password",
        ),
        (
            {"email": "a@example.com", "password": "bluebakery!", "business_name": "Blue Bakery"},
            "password",
        ),
        (
            {"email": "a@example.com", "password": "WhatsApp Business 1", "business_name": "X"},
            "password",
        ),
        (
            {"email": "a@example.com", "password": "client-hub-2025", "business_name": "X"},
            "password",
        ),
        ({"email": "a@example.com", "password": PASSWORD, "business_name": "  "}, "business_name"),
        # Shown to partners on consent screens: it must read as it is stored.
        (
            {"email": "a@example.com", "password": PASSWORD, "business_name": "Acme\u202eetyB"},
            "business_name",
        ),
        ({"email": "a@example.com", "password": PASSWORD}, "business_name"),
        ({"email": 5, "password": PASSWORD, "business_name": "X"}, "email"),
    ],
)
def test_invalid_signups_are_refused_with_the_failing_field(app, client, body, field):
    resp = client.post("/v1/signup", json=body)
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    assert field in resp.get_json()["errors"]
    with app.app_context():
        assert _count(EmailToken) == 0 and _count(OutboxMessage) == 0


def test_the_address_refused_as_password_is_named_in_the_error(client):
    resp = _signup(client, email=OWN, password=OWN)
    assert resp.status_code == 422
    assert "email address" in resp.get_json()["errors"]["password"][0]
    assert _signup(client, email=OWN, password="ann.smith@example.com 2").status_code == 202


def test_the_business_name_is_no_password_but_a_passphrase_with_it_is(client):
    resp = _signup(client, password="Ann's Bakery 99", name="Ann's Bakery")
    assert resp.status_code == 422
    assert "name of this service or of your business" in resp.get_json()["errors"]["password"][0]
    resp = _signup(client, password="ann's bakery opens at dawn", name="Ann's Bakery")
    assert resp.status_code == 202


def test_the_password_is_stored_only_as_an_argon2_hash(app, client):
    _signup(client)
    with app.app_context():
        token = db.session.scalar(sa.select(EmailToken))
        assert token.payload["password_hash"].startswith("$argon2id$")
        assert PASSWORD not in str(token.payload)
        assert len(token.token_hash) == 64  # SHA-256, the raw secret is only in the email
        assert token.token_hash not in db.session.scalar(sa.select(OutboxMessage.body))


def test_the_signup_page_posts_to_the_same_service(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    resp = submit_form(
        client, "/signup", email="page@example.com", password=PASSWORD, business_name="Page Co"
    )
    assert resp.status_code == 200
    assert "Check your inbox" in resp.get_data(as_text=True)
    deliver_mail(app, smtp_url)
    assert _verify(client, received_link(mailbox, "page@example.com")).status_code == 200


def test_the_signup_page_shows_what_to_fix_and_keeps_the_typed_values(client):
    resp = submit_form(
        client, "/signup", email="page@example.com", password="short", business_name="Page Co"
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "at least 8 characters" in html and 'value="Page Co"' in html


def test_the_signup_page_refuses_a_post_without_csrf_token(app, client):
    resp = client.post(
        "/signup",
        data={"email": "x@example.com", "password": PASSWORD, "business_name": "X"},
        headers={"Accept": "text/html"},
    )
    assert resp.status_code == 400
    assert "Reload it and try again" in resp.get_data(as_text=True)
    with app.app_context():
        assert _count(EmailToken) == 0


def test_a_signup_started_from_a_consent_link_keeps_its_partner_and_continue_url(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    with app.app_context():
        partner = make_org("partner", "Acme")
        db.session.commit()
        partner_id = partner.id
        start_signup(
            "cara@example.com", PASSWORD, "Cara Co", partner_id, continue_url="/consent/abc"
        )
    deliver_mail(app, smtp_url)
    resp = _verify(client, received_link(mailbox, "cara@example.com"))
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/consent/abc")
    with client.session_transaction() as session:  # logged in as the new owner
        assert session["uid"].startswith("usr_")
    with app.app_context():
        org = db.session.scalar(sa.select(Organization).where(Organization.kind == "client"))
        assert org.onboarding_partner_id == partner_id


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/x",
        "//evil.example/x",
        "/\\evil",
        # browsers drop tabs and line breaks from a URL: these become //evil.example
        "/\t/evil.example/x",
        "/\n/evil.example/x",
        "/\r/evil.example/x",
    ],
)
def test_a_continue_url_off_this_service_is_refused(app_ctx, url):
    from idp.errors import InvalidInput

    with pytest.raises(InvalidInput):
        start_signup("dan@example.com", PASSWORD, "Dan Co", continue_url=url)


def test_the_database_refuses_a_second_unspent_signup_link_for_one_address(app_ctx):
    """A write that skips spending the older link fails, and the older link still works."""
    from sqlalchemy.exc import IntegrityError

    from idp.accounts.service import pending_signup
    from idp.accounts.tokens import issue_email_token

    start_signup("ann@example.com", PASSWORD, "Ann's Bakery")
    (first,) = queued_link_secrets("ann@example.com")
    issue_email_token("signup", "ann@example.com", 3600, payload={})
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert pending_signup(first)["business_name"] == "Ann's Bakery"

    # Other purposes, other addresses and spent links take no part in the rule.
    issue_email_token("verify_email", "ann@example.com", 3600)
    issue_email_token("signup", "bob@example.com", 3600, payload={})
    db.session.commit()
    start_signup("ann@example.com", PASSWORD, "Ann's Second Bakery")
    (second,) = queued_link_secrets("ann@example.com") - {first}
    assert pending_signup(second)["business_name"] == "Ann's Second Bakery"
    assert _count(EmailToken) == 4

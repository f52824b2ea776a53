"""The outbox worker delivers over real SMTP, retries with backoff, and never double-claims."""

from __future__ import annotations

import logging
import socket
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.outbox import worker
from idp.outbox.cli import worker_command
from idp.outbox.models import REDACTED_EMAIL_BODY, OutboxMessage
from idp.outbox.service import enqueue_email
from idp.outbox.smtp import DeliveryDeferred, PermanentDeliveryError, parse_smtp_url
from idp.timeutil import utcnow
from tests.fixtures.smtp import Mailbox, body_of, serving


def _enqueue(app, n=1, to="ann@example.com", body="Your link: http://x/?token=SECRET"):
    with app.app_context():
        ids = [enqueue_email(to, f"Hello {i}", body).id for i in range(n)]
        db.session.commit()
    return ids


def _row(app, message_id) -> OutboxMessage:
    with app.app_context():
        row = db.session.get(OutboxMessage, message_id)
        db.session.expunge(row)
        return row


def _assert_final_without_secret(app, message_id, status) -> None:
    row = _row(app, message_id)
    assert row.status == status and row.body == REDACTED_EMAIL_BODY
    assert "SECRET" not in f"{row.subject} {row.payload} {row.last_error}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_without_smtp_messages_are_logged_without_their_body_and_stay_pending(app, caplog):
    (message_id,) = _enqueue(app)
    app.config["IDP_SMTP_URL"] = None
    with caplog.at_level(logging.INFO, logger="idp.outbox"), app.app_context():
        assert worker.run_once() == {"sent": 0, "pending": 1, "failed": 0}
    assert "would send" in caplog.text and "ann@example.com" in caplog.text
    assert "Hello 0" in caplog.text and "SECRET" not in caplog.text
    row = _row(app, message_id)
    assert row.status == "pending" and row.attempts == 0 and row.body.endswith("SECRET")


def test_without_smtp_a_subject_cannot_forge_a_log_line(app, caplog):
    with app.app_context():
        enqueue_email("ann@example.com", "Join Acme\n2026-01-01 INFO forged: all fine", "Hi")
        db.session.commit()
    app.config["IDP_SMTP_URL"] = None
    with caplog.at_level(logging.INFO, logger="idp.outbox"), app.app_context():
        worker.run_once()
    [logged] = [r.getMessage() for r in caplog.records if "would send" in r.getMessage()]
    assert "Join Acme 2026-01-01 INFO forged: all fine" in logged and "\n" not in logged


def test_the_worker_delivers_over_smtp_and_marks_the_message_sent(app, smtp_server, monkeypatch):
    mailbox, smtp_url = smtp_server
    (message_id,) = _enqueue(app)
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", smtp_url)
    result = app.test_cli_runner().invoke(worker_command, ["--once"])
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output
    received = mailbox.wait_for("ann@example.com")[0]
    assert received["Subject"] == "Hello 0"
    assert received["From"] == app.config["IDP_MAIL_FROM"]
    assert "token=SECRET" in body_of(received)
    row = _row(app, message_id)
    assert row.status == "sent" and row.sent_at is not None and row.attempts == 1
    assert row.body == REDACTED_EMAIL_BODY  # the link went out; its secret stays nowhere
    with app.app_context():
        assert worker.run_once()["sent"] == 0  # sent once only


# What ends a header line: CR, LF, NEL, VT, FF, the file separator, the Unicode line
# and paragraph separators; and control characters RFC 5322 forbids generating (BEL, ESC).
HEADER_BREAKERS = [
    "\r\n",
    "\n",
    "\r",
    "\x85",
    "\x0b",
    "\x0c",
    "\x1c",
    "\u2028",
    "\u2029",
    "\x07",
    "\x1b",
]


@pytest.mark.parametrize("breaker", HEADER_BREAKERS)
def test_a_subject_with_a_line_break_is_sent_on_one_line_and_adds_no_header(
    app, smtp_server, monkeypatch, breaker
):
    mailbox, smtp_url = smtp_server
    with app.app_context():
        message_id = enqueue_email(
            "ann@example.com", f"Join Acme{breaker}Bcc: mallory@evil.example", "Hello"
        ).id
        db.session.commit()
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", smtp_url)
    with app.app_context():
        assert worker.run_once() == {"sent": 1, "pending": 0, "failed": 0}
    [received] = mailbox.messages
    assert received["Subject"] == "Join Acme Bcc: mallory@evil.example"
    assert received["Bcc"] is None and received["X-Envelope-To"] == "ann@example.com"
    assert _row(app, message_id).status == "sent"


def test_an_unreachable_server_is_retried_with_growing_backoff_then_failed(app, monkeypatch):
    (message_id,) = _enqueue(app)
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", f"smtp://127.0.0.1:{_closed_port()}")
    with app.app_context():
        assert worker.run_once() == {"sent": 0, "pending": 1, "failed": 0}
        row = db.session.get(OutboxMessage, message_id)
        assert row.attempts == 1 and "ConnectionRefused" in row.last_error
        delay = row.next_attempt_at - utcnow()
        assert timedelta(seconds=20) < delay <= timedelta(seconds=30)
        assert worker.run_once()["pending"] == 0  # not due yet
        row.attempts, row.next_attempt_at = worker.MAX_ATTEMPTS - 1, utcnow()
        db.session.commit()
        assert worker.run_once() == {"sent": 0, "pending": 0, "failed": 1}
        assert db.session.get(OutboxMessage, message_id).status == "failed"


def test_backoff_doubles_and_is_capped():
    assert [worker.backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert worker.backoff(50) == timedelta(seconds=worker.BACKOFF_MAX_SECONDS)


def test_deliverers_are_chosen_by_kind(app, monkeypatch):
    seen = []
    monkeypatch.setitem(worker.DELIVERERS, "webhook", lambda message: seen.append(message.id))
    with app.app_context():
        message = enqueue_email("https://partner.example/hook", "event", "{}")
        message.kind = "webhook"
        db.session.commit()
        assert worker.run_once()["sent"] == 1
    assert seen == [message.id]


def test_a_permanent_error_fails_the_message_at_once(app, monkeypatch):
    def refuse(message):
        raise PermanentDeliveryError("recipient refused")

    monkeypatch.setitem(worker.DELIVERERS, "email", refuse)
    (message_id,) = _enqueue(app)
    with app.app_context():
        assert worker.run_once()["failed"] == 1
    assert _row(app, message_id).last_error.endswith("recipient refused")


def test_concurrent_workers_never_claim_the_same_message(app):
    ids = _enqueue(app, n=30)
    claimed: list[list[str]] = []
    errors = []

    def claim():
        try:
            with app.app_context():
                mine = []
                while batch := worker.claim_due(limit=3):
                    mine += batch
                claimed.append(mine)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    every = [message_id for mine in claimed for message_id in mine]
    assert sorted(every) == sorted(ids)  # each message claimed exactly once


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example:2525", ("smtp", "mail.example", 2525, None, None)),
        ("smtps://u%40x:p%3Aw@mail.example", ("smtps", "mail.example", 465, "u@x", "p:w")),
        ("smtp+starttls://mail.example", ("smtp+starttls", "mail.example", 587, None, None)),
    ],
)
def test_smtp_urls_are_parsed(url, expected):
    target = parse_smtp_url(url)
    assert (target.scheme, target.host, target.port, target.username, target.password) == expected


def test_a_malformed_smtp_url_is_refused():
    with pytest.raises(ValueError, match="IDP_SMTP_URL"):
        parse_smtp_url("http://mail.example")


def test_a_deliverer_may_defer_a_message_for_a_while_without_spending_an_attempt(app, monkeypatch):
    def not_yet(message):
        raise DeliveryDeferred("an earlier message must go first", delay=5)

    monkeypatch.setitem(worker.DELIVERERS, "email", not_yet)
    (message_id,) = _enqueue(app)
    with app.app_context():
        assert worker.run_once()["pending"] == 1
    row = _row(app, message_id)
    assert row.attempts == 0 and row.status == "pending"
    assert timedelta(seconds=3) < row.next_attempt_at - utcnow() <= timedelta(seconds=5)


def test_the_worker_loop_keeps_delivering_until_stopped(app, smtp_server, monkeypatch):
    mailbox, smtp_url = smtp_server
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", smtp_url)
    stop = threading.Event()

    def loop():
        with app.app_context():
            worker.run_forever(interval=0.05, stop=stop)
            db.session.remove()

    runner = threading.Thread(target=loop)
    runner.start()
    try:
        _enqueue(app, to="first@example.com")
        mailbox.wait_for("first@example.com")
        _enqueue(app, to="later@example.com")  # written while the worker idles
        mailbox.wait_for("later@example.com")
    finally:
        stop.set()
        runner.join(timeout=10)
    assert not runner.is_alive()


def test_a_sent_email_keeps_no_link_secret_and_a_retried_one_keeps_its_body(
    app, smtp_server, monkeypatch
):
    mailbox, smtp_url = smtp_server
    (message_id,) = _enqueue(app)
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", f"smtp://127.0.0.1:{_closed_port()}")
    with app.app_context():
        assert worker.run_once()["pending"] == 1
    assert _row(app, message_id).body.endswith("token=SECRET")  # still to be sent
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", smtp_url)
    with app.app_context():
        db.session.get(OutboxMessage, message_id).next_attempt_at = utcnow()
        db.session.commit()
        assert worker.run_once()["sent"] == 1
    assert "token=SECRET" in body_of(mailbox.wait_for("ann@example.com")[0])
    _assert_final_without_secret(app, message_id, "sent")


@pytest.mark.parametrize("how", ["refused", "out of attempts"])
def test_an_email_given_up_keeps_no_link_secret(app, monkeypatch, how):
    def refuse(message):
        raise PermanentDeliveryError("recipient refused")

    if how == "refused":
        monkeypatch.setitem(worker.DELIVERERS, "email", refuse)
    else:
        monkeypatch.setitem(app.config, "IDP_SMTP_URL", f"smtp://127.0.0.1:{_closed_port()}")
    (message_id,) = _enqueue(app)
    with app.app_context():
        db.session.get(OutboxMessage, message_id).attempts = worker.MAX_ATTEMPTS - 1
        db.session.commit()
        assert worker.run_once()["failed"] == 1
    _assert_final_without_secret(app, message_id, "failed")


@pytest.mark.parametrize("outcome", ["sent", "failed"])
def test_a_webhook_event_keeps_its_body_for_redelivery(app, monkeypatch, outcome):
    def deliverer(message):
        if outcome == "failed":
            raise PermanentDeliveryError("no endpoint")

    monkeypatch.setitem(worker.DELIVERERS, "webhook", deliverer)
    with app.app_context():
        message = enqueue_email("prt_1", "event", '{"type": "channel_created"}')
        message.kind = "webhook"
        db.session.commit()
        message_id = message.id
        assert worker.run_once()[outcome] == 1
    row = _row(app, message_id)
    assert row.status == outcome and row.body == '{"type": "channel_created"}'


def test_a_message_another_worker_finished_meanwhile_is_not_sent_again(app, monkeypatch):
    sent = []
    monkeypatch.setitem(worker.DELIVERERS, "email", lambda message: sent.append(message.body))
    (message_id,) = _enqueue(app)
    with app.app_context():
        assert worker.claim_due() == [message_id]
        # Another worker whose lease ran out mid-delivery records it sent meanwhile.
        assert worker.deliver(message_id) == "sent"
        assert worker.deliver(message_id) == "sent"
    assert sent == ["Your link: http://x/?token=SECRET"]
    assert _row(app, message_id).attempts == 1


def test_delivery_never_logs_a_body(app, smtp_server, monkeypatch, caplog):
    _mailbox, smtp_url = smtp_server
    _enqueue(app, to="ann@example.com")
    _enqueue(app, to="bob@example.com")
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", smtp_url)
    with caplog.at_level(logging.DEBUG, logger="idp"), app.app_context():
        assert worker.run_once()["sent"] == 2
        _enqueue(app)
        monkeypatch.setitem(app.config, "IDP_SMTP_URL", f"smtp://127.0.0.1:{_closed_port()}")
        assert worker.run_once()["pending"] == 1
        monkeypatch.setitem(app.config, "IDP_SMTP_URL", None)
        db.session.execute(sa.update(OutboxMessage).values(next_attempt_at=utcnow()))
        db.session.commit()
        assert worker.run_once()["pending"] == 1
    assert "delivered email" in caplog.text and "would send" in caplog.text
    assert "SECRET" not in caplog.text


def test_a_message_whose_batch_lease_ran_out_goes_out_from_one_worker_only(app, monkeypatch):
    """A slow relay uses up a batch's lease: another worker claims the rest and sends it;
    the first worker, reaching those messages, leaves them to the one holding them now."""
    first, second = _enqueue(app, n=2)
    late = {"by": timedelta(0)}
    monkeypatch.setattr(worker, "utcnow", lambda: utcnow() + late["by"])
    sent: list[tuple[str, str]] = []

    def other_worker():
        with app.app_context():
            counts = worker.run_once()
            db.session.remove()
        sent.append(("other worker", f"ran: {counts}"))

    def slow_relay(message):
        sent.append((threading.current_thread().name, message.id))
        if message.id == first:
            # This conversation outlasts the batch's lease; meanwhile another worker runs.
            late["by"] = timedelta(seconds=worker.LEASE_SECONDS + 1)
            thread = threading.Thread(target=other_worker, name="other")
            thread.start()
            thread.join(10)

    monkeypatch.setitem(worker.DELIVERERS, "email", slow_relay)
    with app.app_context():
        counts = worker.run_once()

    deliveries = [who for who, what in sent if what == second]
    assert deliveries == ["other"], sent  # sent once, by the worker that holds it now
    assert counts == {"sent": 1, "pending": 1, "failed": 0}
    assert (_row(app, first).status, _row(app, second).status) == ("sent", "sent")
    assert _row(app, second).attempts == 1


@pytest.mark.parametrize("quit_reply", ["554 5.0.0 closing with an error", "421 4.3.0 going away"])
def test_an_email_the_server_took_is_sent_whatever_it_answers_to_quit(app, monkeypatch, quit_reply):
    """A server that accepts the message and then answers QUIT with an error: the message
    is delivered, so it is neither marked failed (5xx) nor sent again (4xx)."""
    mailbox = Mailbox()

    async def handle_quit(server, session, envelope):
        return quit_reply

    mailbox.handle_QUIT = handle_quit
    with serving(mailbox) as url:
        monkeypatch.setitem(app.config, "IDP_SMTP_URL", url)
        (message_id,) = _enqueue(app)
        with app.app_context():
            assert worker.run_once()["sent"] == 1
            assert worker.run_once() == {"sent": 0, "pending": 0, "failed": 0}
    assert len(mailbox.wait_for("ann@example.com")) == 1
    assert _row(app, message_id).status == "sent"

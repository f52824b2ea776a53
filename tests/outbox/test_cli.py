"""``idp outbox list/show``: without an SMTP relay, the operator reads the messages here."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.outbox.cli import outbox_group
from idp.outbox.service import enqueue_email


def test_list_and_show_the_pending_messages(app):
    with app.app_context():
        message = enqueue_email("ann@example.com", "Confirm", "Open http://x/?token=abc")
        db.session.commit()
        message_id = message.id
    runner = app.test_cli_runner()
    listing = runner.invoke(outbox_group, ["list", "--status", "pending"])
    assert listing.exit_code == 0
    assert message_id in listing.output and "ann@example.com" in listing.output
    assert "token=abc" not in listing.output
    shown = runner.invoke(outbox_group, ["show", message_id])
    assert shown.exit_code == 0 and "token=abc" in shown.output
    missing = runner.invoke(outbox_group, ["show", "msg_nope"])
    assert missing.exit_code != 0 and "no message" in missing.output


def test_show_prints_a_sent_email_without_its_links(app, monkeypatch):
    from idp.outbox import worker
    from idp.outbox.models import REDACTED_EMAIL_BODY

    monkeypatch.setitem(worker.DELIVERERS, "email", lambda message: None)
    with app.app_context():
        message_id = enqueue_email("ann@example.com", "Confirm", "Open http://x/?token=abc").id
        db.session.commit()
        assert worker.run_once()["sent"] == 1
    shown = app.test_cli_runner().invoke(outbox_group, ["show", message_id])
    assert shown.exit_code == 0 and "Confirm" in shown.output
    assert "token=abc" not in shown.output and REDACTED_EMAIL_BODY in shown.output


def test_list_and_show_print_a_subject_on_one_line_as_it_is_sent(app):
    with app.app_context():
        message_id = enqueue_email(
            "ann@example.com", "Join Acme\u2028Bcc: mallory@evil.example", "Hi"
        ).id
        db.session.commit()
    runner = app.test_cli_runner()
    [line] = runner.invoke(outbox_group, ["list"]).output.splitlines()
    assert line.endswith("ann@example.com  Join Acme Bcc: mallory@evil.example")
    shown = runner.invoke(outbox_group, ["show", message_id]).output
    assert shown.splitlines()[:3] == [
        "To: ann@example.com",
        "Subject: Join Acme Bcc: mallory@evil.example",
        "",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["worker", "--once", "--batch", "0"],  # would deliver nothing, forever
        ["worker", "--once", "--batch", "-1"],  # no limit on SQLite, an error on PostgreSQL
        ["worker", "--interval", "0"],  # a busy loop
        ["worker", "--interval", "-1"],
        ["outbox", "list", "--limit", "0"],
        ["outbox", "list", "--limit", "-1"],
    ],
)
def test_counts_and_intervals_below_one_are_usage_errors(app, args):
    from idp.cli import main

    result = app.test_cli_runner().invoke(main, args)

    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output


def test_worker_once_help_says_it_delivers_one_batch(app):
    from idp.outbox.cli import worker_command

    shown = app.test_cli_runner().invoke(worker_command, ["--help"])

    text = " ".join(shown.output.split())
    once = text.split("--once", 1)[1].split("--interval", 1)[0]
    assert "one batch" in once and "at most --batch" in once

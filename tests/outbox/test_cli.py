"""``idp outbox list/show``: without an SMTP relay, the operator reads the messages here."""

from __future__ import annotations

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

"""Every legal and illegal status change, its history, audit, and what terminating does."""

from __future__ import annotations

import itertools

import pytest

from idp.apikeys.service import InvalidApiKey, check_key
from idp.audit.models import AuditEvent
from idp.channels.models import ChannelStatusChange
from idp.extensions import db
from policies.channels import CHANNEL_STATUSES, TRANSITIONS, allowed_targets
from tests.consent.factories import make_key
from tests.factories import make_channel

PAIRS = list(itertools.product(CHANNEL_STATUSES, CHANNEL_STATUSES))
LEGAL = [(a, b) for a, b in PAIRS if b in TRANSITIONS[a]]
ILLEGAL = [(a, b) for a, b in PAIRS if b not in TRANSITIONS[a]]


# README "Channel lifecycle", written out apart from TRANSITIONS so that the two can disagree.
DOCUMENTED = {
    ("created", "pending"),
    ("pending", "created"),  # rejected
    ("pending", "ready"),
    ("ready", "running"),
    ("running", "live"),
    ("running", "suspended"),
    ("live", "suspended"),
    ("suspended", "running"),
    ("suspended", "live"),  # billing had started before the suspension
} | {(status, "terminated") for status in CHANNEL_STATUSES if status != "terminated"}


BACK_TO_LIVE = ("suspended", "live")


def test_the_lifecycle_is_the_documented_one():
    assert set(LEGAL) == DOCUMENTED


@pytest.mark.parametrize("path", [[], ["running", "suspended"]])
def test_a_suspended_channel_whose_billing_had_not_started_resumes_to_running_only(
    client, world, path
):
    """Never live (suspended as created here, or suspended while running): not straight to live."""
    channel = make_channel(world.orgs["a"], "running" if path else "suspended")
    db.session.commit()
    for status in path[1:]:
        assert _post_status(client, world, channel.id, status).status_code == 200

    refused = _post_status(client, world, channel.id, "live")

    assert refused.status_code == 409
    assert (refused.json["code"], refused.json["allowed"]) == (
        "illegal_transition",
        ["running", "terminated"],
    )
    db.session.expire_all()
    assert db.session.get(type(channel), channel.id).status == "suspended"
    assert _post_status(client, world, channel.id, "running").status_code == 200
    assert _post_status(client, world, channel.id, "live").status_code == 200


def test_a_channel_suspended_again_after_being_live_may_go_straight_back_to_live(client, world):
    channel = make_channel(world.orgs["a"], "running")
    db.session.commit()
    for status in ("live", "suspended", "running", "suspended", "live"):
        assert _post_status(client, world, channel.id, status).status_code == 200, status


def _post_status(client, world, channel_id, status, reason="ops"):
    return client.post(
        f"/v1/channels/{channel_id}/status",
        json={"status": status, "reason": reason},
        headers=world.bearers["provisioning"],
    )


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_a_legal_change_is_applied_kept_in_history_and_audited(client, world, current, target):
    # Straight back to live only when billing had started: this one was suspended while live.
    channel = make_channel(
        world.orgs["a"], "live" if (current, target) == BACK_TO_LIVE else current
    )
    db.session.commit()
    if (current, target) == BACK_TO_LIVE:
        assert _post_status(client, world, channel.id, "suspended").status_code == 200
    res = _post_status(client, world, channel.id, target, reason=f"to {target}")
    assert res.status_code == 200, res.json
    assert res.json["status"] == target
    [step] = db.session.scalars(
        db.select(ChannelStatusChange).where(
            ChannelStatusChange.channel_id == channel.id, ChannelStatusChange.to_status == target
        )
    )
    assert (step.from_status, step.to_status, step.reason) == (current, target, f"to {target}")
    audit = db.session.scalars(
        db.select(AuditEvent)
        .where(AuditEvent.target_id == channel.id, AuditEvent.action == "channel.status_changed")
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    ).all()[-1]
    assert audit.before["status"] == current and audit.after["status"] == target
    assert audit.reason == f"to {target}"


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_an_illegal_change_answers_409_with_the_allowed_ones(client, world, current, target):
    channel = make_channel(world.orgs["a"], current)
    db.session.commit()
    res = _post_status(client, world, channel.id, target)
    assert res.status_code == 409
    assert res.json["code"] == "illegal_transition"
    assert res.json["current_status"] == current
    # Made in its status, a suspended channel was never live: not straight back to live.
    assert res.json["allowed"] == sorted(allowed_targets(current, billing_started=False))
    db.session.expire_all()
    assert db.session.get(type(channel), channel.id).status == current


def test_an_unknown_status_is_invalid_input(client, world):
    res = _post_status(client, world, world.channels["a1"].id, "exploded")
    assert res.status_code == 422


def test_an_unknown_channel_is_not_found(client, world):
    assert _post_status(client, world, "ch_missing", "live").status_code == 404


def test_terminating_revokes_the_channel_keys_at_once(client, world):
    channel = world.channels["a1"]
    key = make_key(channel)
    assert check_key(key).channel_id == channel.id

    res = _post_status(client, world, channel.id, "terminated", reason="contract ended")
    assert res.status_code == 200
    assert res.json["terminated_at"] is not None
    with pytest.raises(InvalidApiKey):
        check_key(key)
    revoked = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "api_key.revoked"))
    assert revoked is not None

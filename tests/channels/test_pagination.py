"""Cursor pages stay stable while rows are inserted between requests."""

from __future__ import annotations

import pytest

from idp.extensions import db
from tests.factories import make_channel, make_org


def _walk(client, path, headers, limit, between=None):
    """Follow next_cursor to the end; call ``between`` after each page."""
    seen, cursor = [], None
    while True:
        query = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        res = client.get(path, query_string=query, headers=headers)
        assert res.status_code == 200, res.json
        seen.extend(row["id"] for row in res.json["items"])
        cursor = res.json["next_cursor"]
        if between:
            between()
        if cursor is None:
            return seen


def test_channel_pages_neither_skip_nor_repeat_while_numbers_are_added(client, world):
    a = world.orgs["a"]
    before = [make_channel(a, "created").id for _ in range(7)]
    db.session.commit()
    added = []

    def insert():
        added.append(make_channel(a, "created").id)
        db.session.commit()

    path = f"/v1/partners/{world.orgs['p'].id}/channels"
    seen = _walk(client, path, world.bearers["p_owner"], 3, insert)
    # Every number that existed before the walk is seen exactly once.
    assert len(seen) == len(set(seen))
    assert set(before) | {world.channels[k].id for k in ("a1", "a2", "g1")} <= set(seen)


def test_client_pages_are_stable_and_complete(client, world):
    p = world.orgs["p"]
    for i in range(5):
        make_org("client", f"Extra {i}", onboarding_partner_id=p.id)
    db.session.commit()

    def insert():
        make_org("client", "Late joiner", onboarding_partner_id=p.id)
        db.session.commit()

    seen = _walk(client, f"/v1/partners/{p.id}/clients", world.bearers["p_owner"], 2, insert)
    assert len(seen) == len(set(seen))
    assert len(seen) >= 7


def test_a_forged_cursor_is_invalid_input(client, world):
    res = client.get(
        f"/v1/partners/{world.orgs['p'].id}/channels",
        query_string={"cursor": "not-a-cursor"},
        headers=world.bearers["p_owner"],
    )
    assert res.status_code == 422
    assert res.json["code"] == "invalid_cursor"


def test_a_cursor_nested_past_the_json_decoder_s_depth_is_invalid_input():
    # The routes' length limit keeps such cursors out; the decoder refuses them too.
    import base64

    from idp.channels.cursor import InvalidCursor, decode

    with pytest.raises(InvalidCursor):
        decode(base64.urlsafe_b64encode(b"[" * 100_000).decode())

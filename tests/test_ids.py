"""Ids: a kind's prefix, then Crockford base32: random, or the time then random."""

from __future__ import annotations

import collections
import time

import pytest

from idp.ids import (
    _ALPHABET,
    PREFIXES,
    RANDOM_CHARS_AFTER_TIME,
    TIME_CHARS,
    new_id,
    new_time_ordered_id,
)


@pytest.mark.parametrize("length", [1, 7, 16, 22, 31, 40])
def test_an_id_is_its_prefix_and_length_characters_of_the_alphabet(length):
    value = new_id("tf", length)
    prefix, _, body = value.partition("_")
    assert prefix == "tf"
    assert len(body) == length
    assert set(body) <= set(_ALPHABET)


def test_ids_do_not_repeat():
    assert len({new_id(PREFIXES["access_token"]) for _ in range(50_000)}) == 50_000


def test_every_character_is_equally_likely_in_every_position():
    # 32,000 ids: each character is expected 1,000 times per position; a biased
    # encoding (a padding character, a skewed last position) lands far outside.
    ids = [new_id("x", 22)[2:] for _ in range(32_000)]
    for position in (0, 10, 21):
        counts = collections.Counter(value[position] for value in ids)
        assert set(counts) == set(_ALPHABET)
        assert 800 < min(counts.values()) <= max(counts.values()) < 1_200


def test_a_time_ordered_id_leads_with_its_millisecond_then_80_random_bits(monkeypatch):
    monkeypatch.setattr(time, "time_ns", lambda: 1_780_000_000_123 * 1_000_000 + 999_999)
    value = new_time_ordered_id("ac")
    prefix, _, body = value.partition("_")
    assert prefix == "ac"
    assert len(body) == TIME_CHARS + RANDOM_CHARS_AFTER_TIME == 26
    assert set(body) <= set(_ALPHABET)
    spelled_time = body[:TIME_CHARS]
    assert sum(_ALPHABET.index(ch) << 5 * (9 - i) for i, ch in enumerate(spelled_time)) == (
        1_780_000_000_123
    )
    assert len({new_time_ordered_id("ac")[-RANDOM_CHARS_AFTER_TIME:] for _ in range(10_000)}) == (
        10_000
    )


def test_time_ordered_ids_sort_as_their_times_and_after_every_earlier_one(monkeypatch):
    # Times whose spelling changes in its first, middle and last characters.
    times = [0, 31, 32, 1_023, 1_024, 1_780_000_000_000, 1_780_000_000_001, 2**50 - 1]
    made = []
    for millis in times:
        monkeypatch.setattr(time, "time_ns", lambda millis=millis: millis * 1_000_000)
        made.append(new_time_ordered_id("evt"))
    assert sorted(made) == made
    assert len(set(made)) == len(made)
    monkeypatch.undo()
    # Made one after another now: never out of order across milliseconds.
    now = [new_time_ordered_id("evt") for _ in range(2_000)]
    assert all(a[4:14] <= b[4:14] for a, b in zip(now, now[1:]))

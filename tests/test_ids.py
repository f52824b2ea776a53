"""Ids: a kind's prefix, then random Crockford base32, every character equally likely."""

from __future__ import annotations

import collections

import pytest

from idp.ids import _ALPHABET, PREFIXES, new_id


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

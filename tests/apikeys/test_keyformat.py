"""The key format: recognisable, long enough, and self-checking."""

import re

from idp.apikeys.keyformat import KEY_LENGTH, PREFIX, generate_key, hash_key, parse_lookup_id


def test_a_new_key_is_recognisable_and_stored_only_as_a_hash():
    key = generate_key()
    assert re.fullmatch(r"d360_[0-9A-Za-z]{61}", key.text)
    assert len(key.text) == KEY_LENGTH
    assert key.secret_hash == hash_key(key.text) and len(key.secret_hash) == 64
    assert key.text not in key.secret_hash
    assert key.last_four == key.text[-4:]
    assert parse_lookup_id(key.text) == key.lookup_id == key.text[len(PREFIX) : len(PREFIX) + 12]


def test_keys_do_not_repeat():
    assert len({generate_key().text for _ in range(200)}) == 200


def test_a_typo_is_refused_by_the_checksum_alone():
    text = generate_key().text
    for position in (len(PREFIX), 20, 40, len(text) - 1):
        swapped = "A" if text[position] != "A" else "B"
        typo = text[:position] + swapped + text[position + 1 :]
        assert parse_lookup_id(typo) is None


def test_malformed_keys_are_refused():
    text = generate_key().text
    for bad in ("", text[:-1], text + "x", "d361_" + text[5:], text.replace(text[10], "-", 1)):
        assert parse_lookup_id(bad) is None

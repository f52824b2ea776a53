"""Typed text fields: what a person may type into a name, a ticket or a reason."""

from __future__ import annotations

import pytest
from marshmallow import Schema, ValidationError

from idp.api_inputs import Text


class _Named(Schema):
    name = Text(required=True, max_length=200)
    reason = Text(load_default=None, max_length=500, multiline=True)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029"])
def test_a_one_line_name_refuses_a_unicode_line_or_paragraph_separator(separator):
    with pytest.raises(ValidationError) as refused:
        _Named().load({"name": f"Acme{separator}Bcc: someone"})
    assert refused.value.messages == {"name": ["Must be one line."]}


@pytest.mark.parametrize("control", ["\u202e", "\u202d", "\u2066", "\u2069", "\u202a"])
def test_a_name_refuses_invisible_text_direction_controls(control):
    # "Acme<RLO>cod.exe" would read "Acmeexe.doc" on a page while stored otherwise.
    with pytest.raises(ValidationError) as refused:
        _Named().load({"name": f"Acme{control}cod.exe"})
    assert refused.value.messages == {
        "name": ["Must not contain an invisible text-direction control."]
    }


def test_a_name_in_a_right_to_left_script_is_accepted():
    assert _Named().load({"name": "شركة الأمل \u200f(Acme)"})["name"] == "شركة الأمل \u200f(Acme)"


def test_a_reason_may_run_over_several_lines():
    loaded = _Named().load({"name": "Acme", "reason": "first line\u2028second\r\nthird"})
    assert loaded["reason"] == "first line\u2028second\r\nthird"

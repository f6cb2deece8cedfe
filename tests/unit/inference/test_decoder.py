"""The decoder's text helpers, model-free."""

from __future__ import annotations

from gateway.inference.guards import is_repetition_loop, trim_repetition


def test_repetition_helpers():
    assert is_repetition_loop("ask not to ask not to ask not to".split())
    assert is_repetition_loop("You can call me Abi. You can call me Abi.".split())
    assert not is_repetition_loop("here's some more word word word word word".split())
    assert not is_repetition_loop("the cat sat on the mat".split())
    assert trim_repetition("If they're... If they're... If".split()) == ["If", "they're..."]
    assert trim_repetition("one two three".split()) == ["one", "two", "three"]

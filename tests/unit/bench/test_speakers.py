"""bench.speakers' scoring and conversations, on made-up labels and tones (no model)."""

from __future__ import annotations

import random

import numpy as np

from bench.speakers import Conversation, conversation, score


def made_up(turns: list[str]) -> Conversation:
    spans, at = [], 0
    for voice in turns:
        spans.append((at, at + 16000, voice))
        at += 24000
    return Conversation(np.zeros(at, np.float32), spans)


def test_labels_are_scored_under_the_best_mapping_to_voices():
    conv = made_up(["x", "y", "x"])
    owners, turn_of = ["x", "x", "y", "y", "x", "x"], [0, 0, 1, 1, 2, 2]
    perfect = score(np.array([1, 1, 0, 0, 1, 1]), owners, turn_of, conv)  # names swapped: still right
    assert perfect == {"voices": 2, "found": 2, "count_exact": True, "windows_right": 1.0, "turns_right": 1.0}
    split = score(np.array([0, 0, 1, 1, 2, 0]), owners, turn_of, conv)  # a third label inside the last turn
    assert split["found"] == 3 and not split["count_exact"]
    assert split["windows_right"] == 5 / 6 and split["turns_right"] == 2 / 3  # a tie in a turn: the label seen first
    merged = score(np.array([0, 0, 0, 0, 0, 0]), owners, turn_of, conv)
    assert merged["found"] == 1 and merged["windows_right"] == 4 / 6 and merged["turns_right"] == 2 / 3


def test_a_conversation_changes_voice_every_turn_with_a_pause_between():
    voices = {"a": np.full(16000 * 30, 0.1, np.float32), "b": np.full(16000 * 30, 0.2, np.float32)}
    conv = conversation(voices, ["a", "b"], turns=9, rng=random.Random(3))
    assert len(conv.turns) == 9 and conv.voices == ["a", "b"]
    for (start, end, voice), (next_start, _, next_voice) in zip(conv.turns, conv.turns[1:]):
        assert voice != next_voice
        assert 0.3 * 16000 <= next_start - end <= 1.0 * 16000 and not conv.samples[end:next_start].any()
        assert 2 * 16000 <= end - start <= 15 * 16000
        assert np.all(conv.samples[start:end] == voices[voice][0])

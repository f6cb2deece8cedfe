"""The engine on the real model: a decode of real speech."""

from __future__ import annotations

from bench.textnorm import wer
from gateway.inference.jobs import DecodeJob, Priority
from gateway.inference.records import DecodeOptions
from tests.clips import CLIPS, load_clip


def test_real_model_decode(engine):
    clip = CLIPS["leopard-en"]
    decoding = engine.decode(DecodeJob(load_clip(clip.id), DecodeOptions(), Priority.FINAL))
    assert decoding.is_speech and decoding.language == "en"
    assert wer(clip.text, decoding.text) <= 0.2, decoding.text
    assert decoding.words and decoding.words[-1].end <= decoding.duration
    load = engine.load()
    assert load.workers == 2 and load.busy == 0

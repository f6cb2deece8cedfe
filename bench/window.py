"""Short-window against full-window decoding of the same utterances.

    python -m bench.window [--models tiny.en base]

Every clip of the corpus is cut into utterances by the streaming segmenter
(default settings), and each utterance is decoded with the final-decode
options on short windows (audio + 1 s padding, at least 10 s or 15 s) and on
Whisper's full 30 s window. Reports corpus WER of each, the decode time of
each, and how often the short window needed its full-window fallback.
Results go to bench/results/window.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.textnorm import word_errors
from gateway.inference.decoder import DecodeOptions, WhisperDecoder
from gateway.inference.models import LoadSettings, ModelRegistry
from vad.segmenter import Segmenter, SegmenterConfig, SpeechEnd, SpeechStart

from .corpus import load_corpus

RESULTS = Path(__file__).resolve().parent / "results"
WINDOWS = (("short >= 10 s", 10.0), ("short >= 15 s", 15.0), ("full 30 s", None))


def utterances(samples) -> list[tuple[int, int]]:
    segmenter = Segmenter(SegmenterConfig())
    spans, start = [], None
    for event in segmenter.feed(samples) + segmenter.flush():
        if isinstance(event, SpeechStart):
            start = event.start
        elif isinstance(event, SpeechEnd):
            spans.append((start, event.end))
    return spans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--audio-dir", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS / "window.json")
    args = parser.parse_args(argv)

    clips = load_corpus(args.audio_dir)
    report = []
    for model in args.models:
        decoder = WhisperDecoder(ModelRegistry(model, LoadSettings(cpu_threads=args.threads, workers=1)).get(model))
        row = {"model": model, "utterances": 0}
        for window, minimum in WINDOWS:
            errors = words = fallbacks = 0
            seconds = 0.0
            options = DecodeOptions(short_window=minimum is not None, min_window_s=minimum or 0.0, language="en")
            for clip in clips:
                texts = []
                for a, b in utterances(clip.samples):
                    started = time.perf_counter()
                    d = decoder.decode(clip.samples[a:b], options)
                    seconds += time.perf_counter() - started
                    fallbacks += minimum is not None and d.window == "full"
                    row["utterances"] += minimum is None
                    if d.is_speech:
                        texts.append(d.text)
                e, w = word_errors(clip.text, " ".join(texts))
                errors, words = errors + e, words + w
            row[window] = {"wer": errors / words, "decode_s": round(seconds, 2), "fallbacks": fallbacks}
            print(f"{model} {window}: WER {100 * errors / words:.2f} %, {seconds:.1f} s, fallbacks {fallbacks}", flush=True)
        report.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "clips": [c.id for c in clips], "models": report}, indent=2))
    print("| model | window | WER | decode time | full-window fallbacks |")
    print("|---|---|---|---|---|")
    for r in report:
        for window, _ in WINDOWS:
            w = r[window]
            print(f"| {r['model']} | {window} | {100 * w['wer']:.2f} % | {w['decode_s']} s | {w['fallbacks']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Short-window against full-window decoding of the same utterances.

    python -m bench.window [--models tiny.en base]

Every clip of the corpus is cut into utterances by the streaming segmenter
(default settings), and each utterance is decoded twice with the final-decode
options: on the short window (audio + padding, at least 10 s) and on
Whisper's full 30 s window. Reports corpus WER of both, the encoder+decoder
time of both, and how often the short window needed its fallback. Results go
to bench/results/window.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gateway.decoder import DecodeOptions, WhisperDecoder
from gateway.models import LoadSettings, ModelRegistry
from gateway.textnorm import word_errors
from vad.segmenter import Segmenter, SegmenterConfig, SpeechEnd, SpeechStart

from .corpus import load_corpus

RESULTS = Path(__file__).resolve().parent / "results"


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
        for window in ("short", "full"):
            errors = words = fallbacks = 0
            seconds = 0.0
            for clip in clips:
                texts = []
                for a, b in utterances(clip.samples):
                    started = time.perf_counter()
                    d = decoder.decode(clip.samples[a:b], DecodeOptions(short_window=window == "short", language="en"))
                    seconds += time.perf_counter() - started
                    fallbacks += window == "short" and d.window == "full"
                    row["utterances"] += window == "short"
                    if d.is_speech:
                        texts.append(d.text)
                e, w = word_errors(clip.text, " ".join(texts))
                errors, words = errors + e, words + w
            row[window] = {"wer": errors / words, "decode_s": round(seconds, 2), "fallbacks": fallbacks}
            print(f"{model} {window}: WER {100 * errors / words:.2f} %, {seconds:.1f} s, fallbacks {fallbacks}", flush=True)
        report.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "clips": [c.id for c in clips], "models": report}, indent=2))
    print("| model | utterances | WER short window | WER full window | decode time short / full | fallbacks |")
    print("|---|---|---|---|---|---|")
    for r in report:
        s, f = r["short"], r["full"]
        print(f"| {r['model']} | {r['utterances']} | {100 * s['wer']:.2f} % | {100 * f['wer']:.2f} % | {s['decode_s']} s / {f['decode_s']} s | {s['fallbacks']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

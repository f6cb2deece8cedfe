"""Batch throughput: the gateway's file path against plain faster-whisper, in one run.

For each bundled model, the same long file is transcribed

* by the gateway: ``gateway.files.transcription.transcribe`` on an ``Engine`` set up as the
  server sets it up (the ``ServerConfig`` defaults for workers, threads per
  decode and compute type, unless overridden here), and
* by plain faster-whisper: ``WhisperModel.transcribe(audio, beam_size=5)`` on
  the very same loaded model object (``registry.get(model)``), so both run
  with the same CTranslate2 threads.

Both get the same decoded 16 kHz samples; file decoding is not timed. Each
model is warmed up on a short clip first; with ``--repeats`` the two paths
alternate and the median wall time counts. Reported: audio seconds per wall
second, the gateway's overhead (+: slower than faster-whisper) and the word
error rate of each against the references when they are known.

    python -m bench.batch                    # ~4 min of English from ../shared/audio (or tests/data)
    python -m bench.batch --audio talk.mp3   # any file PyAV decodes (no WER)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.textnorm import wer
from gateway.audio import SAMPLE_RATE, decode_file
from gateway.config import ServerConfig
from gateway.files.chunks import plan_chunks, speech_regions
from gateway.files.transcription import BatchRequest, transcribe
from gateway.inference.engine import Engine
from gateway.inference.models import BUNDLED, LoadSettings, ModelRegistry

from .corpus import DEFAULT_DIRS, load_corpus, playlist

ROOT = Path(__file__).resolve().parent.parent
WARMUP = ROOT / "tests" / "data" / "leopard-en.wav"
RESULTS = ROOT / "bench" / "results" / "batch.json"


@dataclass(frozen=True)
class LongClip:
    audio: np.ndarray
    reference: str | None
    source: str
    clips: list[str]

    @property
    def duration(self) -> float:
        return self.audio.shape[0] / SAMPLE_RATE


def build_long_clip(target_s: float, gap_s: float = 0.8) -> LongClip:
    """English clips with references (bench.corpus), in manifest order, joined by pauses up to ``target_s``.

    Where the corpus is shorter (tests/data alone), it is repeated.
    """
    directory = next(d for d in DEFAULT_DIRS if (d / "manifest.jsonl").exists())
    corpus = load_corpus(directory)
    chosen, total = [], 0.0
    while total < target_s:
        for clip in corpus:
            chosen.append(clip)
            total += clip.duration + gap_s
            if total >= target_s:
                break
    joined = playlist(chosen, gap_s)
    source = f"{os.path.relpath(directory, ROOT)}: {len(chosen)} English clips ({len({c.id for c in chosen})} distinct), {gap_s} s pauses"
    return LongClip(joined.samples, joined.text, source, [c.id for c in chosen])


def load_clip(args: argparse.Namespace) -> LongClip:
    if args.audio:
        return LongClip(decode_file(args.audio), None, str(args.audio), [])
    return build_long_clip(args.target_s)


@dataclass
class Run:
    model: str
    path: str  # "gateway" or "faster-whisper"
    audio_s: float
    wall_s: float  # median over repeats
    walls: list[float]
    wer: float | None
    text: str

    @property
    def speed(self) -> float:
        return self.audio_s / self.wall_s


def run_gateway(engine: Engine, model: str, clip: LongClip) -> tuple[float, str]:
    started = time.perf_counter()
    result = transcribe(engine, clip.audio, BatchRequest(model=model, language="en" if clip.reference else None))
    return time.perf_counter() - started, result.text


def run_plain(whisper_model, clip: LongClip) -> tuple[float, str]:
    started = time.perf_counter()
    segments, _ = whisper_model.transcribe(clip.audio, beam_size=5, language="en" if clip.reference else None)
    text = "".join(s.text for s in segments).strip()  # the generator does the work
    return time.perf_counter() - started, text


def bench_model(model: str, settings: LoadSettings, clip: LongClip, warmup: np.ndarray, repeats: int) -> list[Run]:
    registry = ModelRegistry(model, settings)
    engine = Engine(registry)
    try:
        whisper_model = registry.get(model)
        run_gateway(engine, model, LongClip(warmup, "warm-up", "", []))
        run_plain(whisper_model, LongClip(warmup, "warm-up", "", []))
        walls: dict[str, list[float]] = {"gateway": [], "faster-whisper": []}
        texts: dict[str, str] = {}
        for i in range(repeats):
            order = ["gateway", "faster-whisper"] if i % 2 == 0 else ["faster-whisper", "gateway"]
            for path in order:
                wall, text = run_gateway(engine, model, clip) if path == "gateway" else run_plain(whisper_model, clip)
                walls[path].append(wall)
                texts[path] = text
                print(f"  {model:8s} {path:15s} {wall:7.2f} s wall", flush=True)
    finally:
        engine.close()
    return [
        Run(
            model=model,
            path=path,
            audio_s=round(clip.duration, 3),
            wall_s=round(statistics.median(walls[path]), 3),
            walls=[round(w, 3) for w in walls[path]],
            wer=round(wer(clip.reference, texts[path]), 4) if clip.reference else None,
            text=texts[path],
        )
        for path in ("gateway", "faster-whisper")
    ]


def markdown(runs: list[Run]) -> str:
    rows = [
        "| model | path | audio (s) | wall (s) | audio s / wall s | gateway overhead | WER |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    plain = {r.model: r for r in runs if r.path == "faster-whisper"}
    for r in runs:
        overhead = f"{(r.wall_s / plain[r.model].wall_s - 1) * 100:+.1f} %" if r.path == "gateway" else ""
        error = f"{r.wer:.3f}" if r.wer is not None else "-"
        rows.append(f"| {r.model} | {r.path} | {r.audio_s:.1f} | {r.wall_s:.2f} | {r.speed:.2f} | {overhead} | {error} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, help="a long file to transcribe instead of the built clip (no WER)")
    parser.add_argument("--target-s", type=float, default=240.0, help="length of the built clip [240]")
    parser.add_argument("--models", default=",".join(BUNDLED), help=f"comma-separated [{','.join(BUNDLED)}]")
    parser.add_argument("--workers", type=int, default=defaults.workers, help=f"decodes in parallel, as the server [{defaults.workers}]")
    parser.add_argument("--cpu-threads", type=int, default=defaults.cpu_threads, help=f"threads per decode, as the server [{defaults.cpu_threads}]")
    parser.add_argument("--compute-type", default=defaults.compute_type, help=f"[{defaults.compute_type}]")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per path; the median counts [1]")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"[{RESULTS.relative_to(ROOT)}]")
    args = parser.parse_args(argv)

    settings = LoadSettings(device="cpu", compute_type=args.compute_type, cpu_threads=args.cpu_threads, workers=args.workers)
    clip = load_clip(args)
    warmup = decode_file(WARMUP)
    chunks = plan_chunks(len(clip.audio), speech_regions(clip.audio))
    print(f"audio: {clip.duration:.1f} s from {clip.source}; gateway plan: {len(chunks)} chunk(s), "
          f"{sum(b - a for a, b in chunks) / SAMPLE_RATE:.1f} s of audio to decode")
    print(f"settings: {settings}; {os.cpu_count()} CPU(s)", flush=True)

    runs: list[Run] = []
    for model in args.models.split(","):
        runs += bench_model(model.strip(), settings, clip, warmup, args.repeats)

    table = markdown(runs)
    print()
    print(table)
    import ctranslate2
    import faster_whisper

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "batch throughput: gateway.files.transcription.transcribe vs WhisperModel.transcribe(beam_size=5), same model object",
                "audio": {"source": clip.source, "duration_s": round(clip.duration, 3), "clips": clip.clips, "reference_known": clip.reference is not None},
                "gateway_plan": {"chunks": len(chunks), "decoded_audio_s": round(sum(b - a for a, b in chunks) / SAMPLE_RATE, 3)},
                "settings": asdict(settings) | {"repeats": args.repeats, "batch_workers": max(1, settings.workers - 1)},
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                            "faster_whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__},
                "results": [asdict(r) | {"audio_s_per_wall_s": round(r.speed, 3)} for r in runs],
                "gateway_overhead_pct": {
                    m: round((g.wall_s / p.wall_s - 1) * 100, 1)
                    for m in dict.fromkeys(r.model for r in runs)
                    for g in runs if g.model == m and g.path == "gateway"
                    for p in runs if p.model == m and p.path == "faster-whisper"
                },
                "table": table,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

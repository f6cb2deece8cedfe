"""Streaming benchmark: latency, capacity, accuracy and CPU cost per model.

    python -m bench.streaming                      # both bundled models, everything
    python -m bench.streaming --models tiny.en --phases single

For each model a real gateway is started as a subprocess (``stt-gateway
serve``, default settings) and real speech is streamed to it over loopback at
real-time pace by asyncio clients in this process:

- single: one stream; time to first partial after speech onset (onset from
  the clip's frame energy), partial updates per second while speaking, final
  latency (arrival of the final minus the stream time its last word ends, as
  a client computes it from the protocol; and minus where the sound stopped,
  from the clip's frame energy, a measure independent of the model);
- accuracy: the whole corpus at real time (split over a few streams), WER of
  the finals next to offline ``WhisperModel.transcribe`` (beam 5, same model,
  same normalisation) on the same clips;
- capacity: N concurrent real-time streams for growing N; the largest N whose
  final-latency p95 stays under 1.5 s with no stream falling behind (no final
  later than 3 s) and none refused by admission control (a 503 is counted,
  not fatal);
- CPU: server CPU seconds (from /proc) per second of audio, in every phase.

Results go to a JSON file and a PNG plot of latency against streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from websockets.exceptions import InvalidStatus

from bench.textnorm import word_errors
from gateway import launch
from gateway.client import StreamResult, stream_audio, stream_url

from .corpus import Clip, Playlist, load_corpus, loudness, playlist, split_evenly

RESULTS = Path(__file__).resolve().parent / "results"


def run_stamp() -> dict[str, Any]:
    """What every results file says of its run: the machine and when."""
    return {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def write_results(out: Path, body: dict[str, Any]) -> None:
    """A run's results file, its folder made when missing."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(body, indent=2))
LATENCY_BOUND_S = 1.5
BEHIND_S = 3.0


def shown(v, unit: str = "") -> str:
    """A measurement as printed: two decimals, "-" when there is none."""
    return "-" if v is None else (f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}")


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the server under test ---------------------------------------------------------
class ServerProcess:
    """The gateway under test: ``gateway.launch.ServerProcess`` with the benchmarks' settings."""

    def __init__(self, model: str, extra: list[str]):
        args = ["--model", model, "--demo", "false", "--log-level", "warning", *extra]
        self.server = launch.ServerProcess.start(args, RESULTS / f"server-{model}.log")
        self.port, self.proc, self.log = self.server.port, self.server.process, self.server.log

    @property
    def url(self) -> str:
        return self.server.ws

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.server.stop()


# -- streaming and measuring ---------------------------------------------------------
@dataclass
class StreamRun:
    playlist: Playlist
    result: StreamResult | None  # None: admission control refused the stream (503)


async def run_streams(
    url: str, playlists: list[Playlist], options: dict, stagger_s: float = 1.0, seed: int = 0
) -> list[StreamRun]:
    rng = random.Random(seed)

    async def one(p: Playlist) -> StreamRun:
        await asyncio.sleep(rng.uniform(0, stagger_s))
        try:
            result = await stream_audio(stream_url(url, **options), p.samples, speed=1.0, chunk_ms=100, trailing_silence_s=1.0)
        except InvalidStatus as exc:
            if exc.response.status_code != 503:
                raise
            return StreamRun(p, None)  # the server is full: a result, not a crash
        return StreamRun(p, result)

    return await asyncio.gather(*(one(p) for p in playlists))


def sound_end(p: Playlist, start: float, stop: float) -> float | None:
    """Where the sound stopped in [start, stop] (stream time): the end of the
    last 10 ms frame within 25 dB of its clip's loudest frame and 10 dB above
    its noise floor. A measure of "where the speech ended" that does not come
    from the model under test."""
    for clip, offset in zip(p.clips, p.offsets):
        if offset <= start < offset + clip.duration + 1.5:
            level, threshold = loudness(clip.samples)
            lo, hi = max(0, int((start - offset) * 100)), min(len(level), int((stop - offset) * 100))
            loud = np.flatnonzero(level[lo:hi] > threshold)
            return offset + (lo + loud[-1] + 1) / 100 if loud.size else None
    return None


def measure(runs: list[StreamRun]) -> dict:
    final_latency, sound_latency, first_partial, partial_rates, behind = [], [], [], [], 0
    errors = words = 0
    refused = sum(run.result is None for run in runs)
    runs = [run for run in runs if run.result is not None]
    for run in runs:
        r = run.result
        latencies = []
        for f in r.finals:
            seg = f["segment"]
            if seg["text"].strip():
                latencies.append(r.arrival_of(f) - seg["end"])
                ended = sound_end(run.playlist, seg["start"], f.get("ended_at", seg["end"]))
                if ended is not None:
                    sound_latency.append(r.arrival_of(f) - ended)
        final_latency += latencies
        if not r.closed or (latencies and max(latencies) > BEHIND_S):
            behind += 1
        for clip, offset in zip(run.playlist.clips, run.playlist.offsets):
            onset = offset + clip.speech_start
            after = [t for e, t in zip(r.events, r.arrivals) if e["type"] == "transcript.partial" and e["end"] > offset and t >= onset]
            if after and after[0] - onset < clip.duration:
                first_partial.append(after[0] - onset)
        for f in r.finals:
            seg = f["segment"]
            speaking = seg["end"] - seg["start"]
            if seg["text"].strip() and speaking >= 1.0:
                n = sum(1 for e in r.events if e["type"] == "transcript.partial" and e["segment_id"] == seg["id"])
                partial_rates.append(n / speaking)
        e, w = word_errors(run.playlist.text, r.text)
        errors, words = errors + e, words + w
    return {
        "streams": len(runs),
        "audio_s": round(sum(run.playlist.duration for run in runs), 1),
        "finals": len(final_latency),
        "final_latency_p50": percentile(final_latency, 50),
        "final_latency_p95": percentile(final_latency, 95),
        "final_latency_max": max(final_latency) if final_latency else None,
        "final_after_sound_p50": percentile(sound_latency, 50),
        "final_after_sound_p95": percentile(sound_latency, 95),
        "first_partial_p50": percentile(first_partial, 50),
        "first_partial_p95": percentile(first_partial, 95),
        "partials_per_s_mean": statistics.fmean(partial_rates) if partial_rates else None,
        "streams_behind": behind,
        "streams_refused": refused,
        "wer": errors / words if words else None,
    }


def phase(server: ServerProcess, playlists: list[Playlist], options: dict) -> dict:
    cpu = server.cpu_seconds()
    runs = asyncio.run(run_streams(server.url, playlists, options))
    stats = measure(runs)
    stats["cpu_s_per_audio_s"] = round((server.cpu_seconds() - cpu) / stats["audio_s"], 4) if stats["audio_s"] else None
    return stats


def offline_wer(model: str, clips: list[Clip], threads: int) -> dict:
    from gateway.inference.models import LoadSettings, ModelRegistry

    whisper = ModelRegistry(model, LoadSettings(cpu_threads=threads, workers=1)).get(model)
    errors = words = 0
    started = time.perf_counter()
    for clip in clips:
        segments, _ = whisper.transcribe(clip.samples, beam_size=5)
        e, w = word_errors(clip.text, "".join(s.text for s in segments))
        errors, words = errors + e, words + w
    return {"wer": errors / words, "words": words, "seconds": round(time.perf_counter() - started, 1)}


def within_bound(stats: dict) -> bool:
    """A capacity step holds: finals in time (p95), no stream behind, none refused."""
    return (stats["final_latency_p95"] or 0) <= LATENCY_BOUND_S and stats["streams_behind"] == 0 and stats["streams_refused"] == 0


def climb(counts: list[int], step: Callable[[int], dict]) -> tuple[list[dict], int]:
    """Run ``step(n)`` for growing stream counts until two in a row fail the
    bound; the steps (each marked ``within_bound``) and the largest n that held."""
    steps, best, failures = [], 0, 0
    for n in counts:
        stats = step(n)
        stats["within_bound"] = within_bound(stats)
        steps.append(stats)
        if stats["within_bound"]:
            best, failures = n, 0
        else:
            failures += 1
            if failures >= 2:
                break
    return steps, best


def capacity_playlists(clips: list[Clip], streams: int, seconds: float, rotation: int) -> list[Playlist]:
    out = []
    for i in range(streams):
        chosen, total, j = [], 0.0, (i * 7 + rotation) % len(clips)
        while total < seconds:
            clip = clips[j % len(clips)]
            chosen.append(clip)
            total += clip.duration + 1.5
            j += 1
        out.append(playlist(chosen))
    return out


def bench_model(model: str, clips: list[Clip], args) -> dict:
    report: dict = {"model": model}
    if "accuracy" in args.phases:
        print(f"[{model}] offline transcribe() on {len(clips)} clips", flush=True)
        report["offline"] = offline_wer(model, clips, threads=2)
    server = ServerProcess(model, args.server_arg)
    try:
        if "single" in args.phases:
            chosen, total = [], 0.0
            for clip in sorted(clips, key=lambda c: c.id):
                if total + clip.duration <= args.single_seconds:
                    chosen.append(clip)
                    total += clip.duration + 1.5
            print(f"[{model}] single stream, {total:.0f} s of audio", flush=True)
            report["single"] = phase(server, [playlist(chosen)], args.options)
        if "accuracy" in args.phases:
            print(f"[{model}] accuracy: corpus over {args.accuracy_streams} real-time streams", flush=True)
            report["accuracy"] = phase(server, [playlist(part) for part in split_evenly(clips, args.accuracy_streams)], args.options)
        if "capacity" in args.phases:

            def capacity_step(n: int) -> dict:
                print(f"[{model}] capacity: {n} streams", flush=True)
                stats = phase(server, capacity_playlists(clips, n, args.step_seconds, rotation=n), args.options)
                print(
                    f"    p50 {shown(stats['final_latency_p50'], ' s')}, p95 {shown(stats['final_latency_p95'], ' s')}, "
                    f"behind {stats['streams_behind']}, refused {stats['streams_refused']}, "
                    f"cpu/audio {stats['cpu_s_per_audio_s']}",
                    flush=True,
                )
                return stats

            steps, best = climb(args.capacity_steps, capacity_step)
            report["capacity"] = {"steps": steps, "max_realtime_streams": best}
    finally:
        server.stop()
    return report


def plot(reports: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for report in reports:
        steps = report.get("capacity", {}).get("steps", [])
        if not steps:
            continue
        n = [s["streams"] for s in steps]
        line = ax.plot(n, [s["final_latency_p95"] for s in steps], marker="o", label=f"{report['model']} final p95")[0]
        ax.plot(n, [s["final_latency_p50"] for s in steps], marker=".", linestyle="--", color=line.get_color(), label=f"{report['model']} final p50")
    ax.axhline(LATENCY_BOUND_S, color="grey", linestyle=":", label="1.5 s bound")
    ax.set_xlabel("concurrent real-time streams")
    ax.set_ylabel("final latency (s after speech ends)")
    ax.set_title("stt-gateway on 2 CPU cores: final latency vs streams")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def table(reports: list[dict]) -> str:
    rows = ["| model | first partial p50 | partials/s | final after last word p50 / p95 | final after sound ends p50 / p95 | max real-time streams | streamed WER | offline WER | CPU s per audio s (1 stream) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        s, a, o = r.get("single", {}), r.get("accuracy", {}), r.get("offline", {})
        cap = r.get("capacity", {})
        rows.append(
            f"| {r['model']} | {shown(s.get('first_partial_p50'), ' s')} | {shown(s.get('partials_per_s_mean'))} | "
            f"{shown(s.get('final_latency_p50'), ' s')} / {shown(s.get('final_latency_p95'), ' s')} | "
            f"{shown(s.get('final_after_sound_p50'), ' s')} / {shown(s.get('final_after_sound_p95'), ' s')} | {cap.get('max_realtime_streams', '-')} | "
            f"{shown(a.get('wer') and 100 * a['wer'], ' %')} | {shown(o.get('wer') and 100 * o['wer'], ' %')} | {shown(s.get('cpu_s_per_audio_s'))} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--phases", nargs="+", default=["single", "accuracy", "capacity"], choices=["single", "accuracy", "capacity"])
    parser.add_argument("--audio-dir", type=Path, help="a folder with manifest.jsonl (default ../shared/audio, else tests/data)")
    parser.add_argument("--single-seconds", type=float, default=120.0, help="audio in the single-stream phase")
    parser.add_argument("--accuracy-streams", type=int, default=4)
    parser.add_argument("--capacity-steps", type=int, nargs="+", default=[1, 2, 4, 6, 8, 10, 12, 14, 16, 20])
    parser.add_argument("--step-seconds", type=float, default=40.0, help="audio per stream in a capacity step")
    parser.add_argument("--server-arg", action="append", default=[], help="extra `stt-gateway serve` argument (repeatable)")
    parser.add_argument("--stream-option", action="append", default=[], metavar="KEY=VALUE", help="session option for every stream (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS / "streaming.json")
    parser.add_argument("--plot", type=Path, default=RESULTS / "streaming.png")
    args = parser.parse_args(argv)
    args.options = dict(option.split("=", 1) for option in args.stream_option)

    clips = load_corpus(args.audio_dir)
    print(f"{len(clips)} clips, {sum(c.duration for c in clips):.0f} s of speech with references", flush=True)
    reports = [bench_model(m, clips, args) for m in args.models]
    body = {
        **run_stamp(),
        "server_args": args.server_arg,
        "stream_options": args.options,
        "clips": [c.id for c in clips],
        "reports": reports,
    }
    write_results(args.out, body)
    if "capacity" in args.phases:
        plot(reports, args.plot)
    print(table(reports))
    print(f"results: {args.out}" + (f", plot: {args.plot}" if "capacity" in args.phases else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

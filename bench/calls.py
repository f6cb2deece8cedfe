"""Call-center benchmark: two-party calls (stereo, 8 kHz mu-law) at real time.

    python -m bench.calls                     # tiny.en, 2 4 6 7 8 calls
    python -m bench.calls --steps 4 6

One gateway (``stt-gateway serve``, default settings); for each step, N
concurrent calls stream over the native door with ``channels=2`` (agent on
channel 0, caller on channel 1, each a different run of corpus clips, the
caller starting a second later, so the parties overlap as in a real call),
then N mono 8 kHz streams of the agents' audio alone, for comparison. Per
step: final latency p50/p95 (arrival of a final minus the stream time its
last word ends), streams behind (a final later than 3 s, or no end), WER
over each channel's own reference, server CPU per second of call. A step
holds when p95 <= 1.5 s with none behind. Results: bench/results/calls.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import soxr
import websockets

from bench.textnorm import word_errors
from gateway.audio import encode_samples
from gateway.client import stream_url

from .corpus import Playlist, load_corpus
from .streaming import (
    BEHIND_S,
    LATENCY_BOUND_S,
    RESULTS,
    ServerProcess,
    capacity_playlists,
    percentile,
    run_stamp,
    shown,
    write_results,
)

RATE = 8000
CHUNK_S = 0.1


async def one_call(url: str, parties: list[Playlist], delay_s: float) -> dict:
    """Stream one call (1 or 2 channels) at real time; finals per channel with arrival times."""
    await asyncio.sleep(delay_s)
    n = max(len(p.samples) for p in parties) + 16000 * 2
    frames = np.zeros((n, len(parties)), np.float32)
    for c, p in enumerate(parties):
        offset = 16000 * c  # the caller starts a second later
        frames[offset : offset + len(p.samples), c] = p.samples[: n - offset]
    pcm = encode_samples(soxr.resample(frames, 16000, RATE).astype(np.float32).reshape(-1), "mulaw")
    step = int(RATE * CHUNK_S) * len(parties)
    options = {"sample_rate": RATE, "encoding": "mulaw", "channels": len(parties)}
    finals: list[tuple[int, str, float, float]] = []  # channel, text, last word end, arrival
    closed = False
    async with websockets.connect(stream_url(url, **options), max_size=None) as ws:
        t0 = time.monotonic()

        async def read() -> None:
            nonlocal closed
            async for message in ws:
                event = json.loads(message)
                if event["type"] == "transcript.final":
                    seg = event["segment"]
                    words = seg.get("words") or []
                    finals.append((event["channel"], seg["text"].strip(), words[-1]["end"] if words else seg["end"], time.monotonic() - t0))
                elif event["type"] == "session.closed":
                    closed = True

        reader = asyncio.create_task(read())
        for k, i in enumerate(range(0, len(pcm), step)):
            await ws.send(pcm[i : i + step])
            await asyncio.sleep(max(0.0, t0 + (k + 1) * CHUNK_S - time.monotonic()))
        await ws.send(json.dumps({"type": "end"}))
        try:
            await asyncio.wait_for(reader, 30)
        except TimeoutError:
            pass
    late = [arrival - end for _, text, end, arrival in finals if text]
    errors = words = 0
    for c, p in enumerate(parties):
        e, w = word_errors(p.text, " ".join(t for ch, t, _, _ in finals if ch == c and t))
        errors, words = errors + e, words + w
    return {"latency": late, "behind": not closed or (bool(late) and max(late) > BEHIND_S), "errors": errors, "words": words,
            "audio_s": n / 16000}


def step(server: ServerProcess, calls: list[list[Playlist]]) -> dict:
    cpu = server.cpu_seconds()
    rng = random.Random(len(calls))

    async def all_calls() -> list[dict]:
        return await asyncio.gather(*(one_call(server.url, parties, rng.uniform(0, 1.0)) for parties in calls))

    results = asyncio.run(all_calls())
    latency = [x for r in results for x in r["latency"]]
    audio_s = sum(r["audio_s"] for r in results)
    stats = {
        "calls": len(calls),
        "channels": len(calls[0]),
        "final_latency_p50": percentile(latency, 50),
        "final_latency_p95": percentile(latency, 95),
        "behind": sum(r["behind"] for r in results),
        "wer": sum(r["errors"] for r in results) / max(1, sum(r["words"] for r in results)),
        "cpu_s_per_call_s": round((server.cpu_seconds() - cpu) / audio_s, 4),
    }
    stats["within_bound"] = (stats["final_latency_p95"] or 0) <= LATENCY_BOUND_S and stats["behind"] == 0
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--audio-dir", type=Path)
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 4, 6, 7, 8])
    parser.add_argument("--step-seconds", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "calls.json")
    args = parser.parse_args(argv)
    clips = load_corpus(args.audio_dir)
    server = ServerProcess(args.model, [])
    rows = []
    try:
        for n in args.steps:
            agents = capacity_playlists(clips, n, args.step_seconds, rotation=n)
            callers = capacity_playlists(clips, n, args.step_seconds, rotation=n + 13)
            print(f"[{args.model}] {n} calls (two channels each)", flush=True)
            stereo = step(server, [[a, c] for a, c in zip(agents, callers)])
            print(f"[{args.model}] {n} mono streams", flush=True)
            mono = step(server, [[a] for a in agents])
            rows.append({"n": n, "calls": stereo, "mono": mono})
            print(f"    calls p95 {shown(stereo['final_latency_p95'], ' s')} behind {stereo['behind']}; "
                  f"mono p95 {shown(mono['final_latency_p95'], ' s')} behind {mono['behind']}", flush=True)
    finally:
        server.stop()
    held_calls = max((r["n"] for r in rows if r["calls"]["within_bound"]), default=0)
    held_mono = max((r["n"] for r in rows if r["mono"]["within_bound"]), default=0)
    body = {
        "benchmark": "two-party calls (8 kHz mu-law, 2 channels) against mono streams, one gateway on loopback",
        **run_stamp(), "model": args.model, "steps": rows,
        "max_calls": held_calls, "max_mono_streams": held_mono,
    }
    write_results(args.out, body)
    print("| N | calls: final p50 / p95 | behind | WER | CPU s per call s | mono: final p50 / p95 | behind | CPU s per s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        c, m = r["calls"], r["mono"]
        print(f"| {r['n']} | {shown(c['final_latency_p50'], ' s')} / {shown(c['final_latency_p95'], ' s')} | {c['behind']} | "
              f"{100 * c['wer']:.1f} % | {c['cpu_s_per_call_s']} | {shown(m['final_latency_p50'], ' s')} / "
              f"{shown(m['final_latency_p95'], ' s')} | {m['behind']} | {m['cpu_s_per_call_s']} |")
    print(f"calls held: {held_calls}; mono streams held: {held_mono}; results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

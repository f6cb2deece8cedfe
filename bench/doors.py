"""Front-door benchmark: the same speech through each door, side by side.

    python -m bench.doors                       # tiny.en, every door
    python -m bench.doors --doors native deepgram --capacity-steps 12 14
    python -m bench.doors --doors openai --capacity-steps --server-arg=--stable-lag-ms=1000   # accuracy only

One gateway (``stt-gateway serve``, tiny.en, default settings) is started as
a subprocess; for each door (native, OpenAI Realtime, Deepgram, AssemblyAI)
the corpus is streamed at real time over loopback by raw WebSocket clients
speaking that door's protocol (the SDKs are the tests' business; here the
clients must cost nothing but the wire):

- accuracy: the corpus split over a few real-time streams; first live text
  (the first text-bearing message of a clip after its speech onset: a
  partial, a delta, an interim result, a partial turn), final latency
  (arrival of a final minus the stream time its last word ends, the same
  yardstick for every door), WER of the finals, and the server's CPU
  seconds per audio second;
- capacity: the native door's largest number of real-time streams whose
  final-latency p95 stays under 1.5 s with none behind (a final over 3 s
  late) and none refused, then each other door at that number: a door
  holds it, or costs more than 5 % of the native door's capacity.

Results: bench/results/doors.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr
import websockets
from websockets.exceptions import InvalidStatus

from bench.textnorm import word_errors
from gateway.audio import encode_samples

from .corpus import Playlist, load_corpus, split_evenly
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

DOORS = ("native", "openai", "deepgram", "assemblyai")
CHUNK_S = 0.1


@dataclass
class DoorRun:
    """What one stream through a door gave: arrivals in seconds since its first audio."""

    playlist: Playlist
    refused: bool = False
    live: list[float] = field(default_factory=list)  # arrivals of text-bearing interim messages
    finals: list[tuple[str, float, float]] = field(default_factory=list)  # (text, last word end, arrival)
    closed: bool = False

    @property
    def text(self) -> str:
        return " ".join(t for t, _, _ in self.finals if t)


# -- one client per door: (url, audio rate, frames of audio, how to end, what a message says) ---------
class Native:
    rate = 16000
    path = "/v0/audio/stream?sample_rate=16000"

    def frame(self, pcm: bytes) -> str | bytes:
        return pcm

    def end(self) -> list[str]:
        return [json.dumps({"type": "end"})]

    def read(self, m: dict, run: DoorRun, at: float) -> bool:
        if m["type"] == "transcript.partial" and m["text"].strip():
            run.live.append(at)
        elif m["type"] == "transcript.final":
            seg = m["segment"]
            words = seg.get("words") or []
            run.finals.append((seg["text"].strip(), words[-1]["end"] if words else seg["end"], at))
        return m["type"] == "session.closed"


class OpenAI:
    rate = 24000
    path = "/v1/realtime?intent=transcription"

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.completed: set[str] = set()
        self.ending = False

    def start(self) -> list[str]:
        update = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}}}
        return [json.dumps(update)]

    def frame(self, pcm: bytes) -> str | bytes:
        return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})

    def end(self) -> list[str]:
        self.ending = True
        return []

    def read(self, m: dict, run: DoorRun, at: float) -> bool:
        kind = m["type"]
        if kind == "input_audio_buffer.speech_started":
            self.started.add(m["item_id"])
        elif kind == "conversation.item.input_audio_transcription.delta" and m["delta"].strip():
            run.live.append(at)
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.completed.add(m["item_id"])
            words = m.get("words") or []
            run.finals.append((m["transcript"], words[-1]["end"] if words else 0.0, at))
        return self.ending and self.idle()

    def idle(self) -> bool:
        return self.started <= self.completed


class Deepgram:
    rate = 16000
    path = "/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&interim_results=true"

    def frame(self, pcm: bytes) -> str | bytes:
        return pcm

    def end(self) -> list[str]:
        return [json.dumps({"type": "CloseStream"})]

    def read(self, m: dict, run: DoorRun, at: float) -> bool:
        if m["type"] == "Results":
            alternative = m["channel"]["alternatives"][0]
            if not m["is_final"] and alternative["transcript"]:
                run.live.append(at)
            elif m["is_final"]:
                words = alternative["words"]
                run.finals.append((alternative["transcript"], words[-1]["end"] if words else m["start"] + m["duration"], at))
        return m["type"] == "Metadata"


class AssemblyAI:
    rate = 16000
    path = "/v3/ws?sample_rate=16000&encoding=pcm_s16le&format_turns=true"

    def frame(self, pcm: bytes) -> str | bytes:
        return pcm

    def end(self) -> list[str]:
        return [json.dumps({"type": "Terminate"})]

    def read(self, m: dict, run: DoorRun, at: float) -> bool:
        if m["type"] == "Turn":
            if not m["end_of_turn"] and m["words"]:
                run.live.append(at)
            elif m["end_of_turn"] and m["turn_is_formatted"]:
                words = m["words"]
                run.finals.append((m["transcript"], words[-1]["end"] / 1000 if words else 0.0, at))
        return m["type"] == "Termination"


CLIENTS = {"native": Native, "openai": OpenAI, "deepgram": Deepgram, "assemblyai": AssemblyAI}


async def stream_through(door: str, url: str, p: Playlist, trailing_s: float = 1.5) -> DoorRun:
    client: Any = CLIENTS[door]()
    samples = np.concatenate([p.samples, np.zeros(int(trailing_s * 16000), np.float32)])
    if client.rate != 16000:
        samples = soxr.resample(samples, 16000, client.rate).astype(np.float32)
    pcm = encode_samples(samples, "pcm_s16le")
    step = int(client.rate * CHUNK_S) * 2
    run = DoorRun(p)
    try:
        async with websockets.connect(url + client.path, max_size=None) as ws:
            t0 = time.monotonic()
            done = asyncio.Event()

            async def reader() -> None:
                async for message in ws:
                    if client.read(json.loads(message), run, time.monotonic() - t0):
                        done.set()
                        return

            reading = asyncio.create_task(reader())
            for text in getattr(client, "start", list)():
                await ws.send(text)
            for n, i in enumerate(range(0, len(pcm), step)):
                await ws.send(client.frame(pcm[i : i + step]))
                await asyncio.sleep(max(0.0, t0 + (n + 1) * CHUNK_S - time.monotonic()))
            for text in client.end():
                await ws.send(text)
            if getattr(client, "idle", lambda: False)():  # OpenAI has no end message: done when no item is open
                done.set()
            try:
                await asyncio.wait_for(done.wait(), 30)
                run.closed = True
            except TimeoutError:
                pass
            reading.cancel()
    except InvalidStatus as exc:
        if exc.response.status_code != 503:
            raise
        run.refused = True
    return run


async def run_streams(door: str, url: str, playlists: list[Playlist], seed: int = 0) -> list[DoorRun]:
    rng = random.Random(seed)

    async def one(p: Playlist) -> DoorRun:
        await asyncio.sleep(rng.uniform(0, 1.0))
        return await stream_through(door, url, p)

    return await asyncio.gather(*(one(p) for p in playlists))


def measure(runs: list[DoorRun]) -> dict:
    latency, first_text, behind, errors, words = [], [], 0, 0, 0
    refused = sum(r.refused for r in runs)
    runs = [r for r in runs if not r.refused]
    for r in runs:
        late = [arrival - end for text, end, arrival in r.finals if text]
        latency += late
        if not r.closed or (late and max(late) > BEHIND_S):
            behind += 1
        for clip, offset in zip(r.playlist.clips, r.playlist.offsets):
            onset = offset + clip.speech_start
            after = [t for t in r.live if onset <= t < offset + clip.duration]
            if after:
                first_text.append(after[0] - onset)
        e, w = word_errors(r.playlist.text, r.text)
        errors, words = errors + e, words + w
    return {
        "streams": len(runs),
        "audio_s": round(sum(r.playlist.duration for r in runs), 1),
        "finals": len(latency),
        "first_live_text_p50": percentile(first_text, 50),
        "final_latency_p50": percentile(latency, 50),
        "final_latency_p95": percentile(latency, 95),
        "streams_behind": behind,
        "streams_refused": refused,
        "wer": errors / words if words else None,
    }


def phase(server: ServerProcess, door: str, playlists: list[Playlist]) -> dict:
    cpu = server.cpu_seconds()
    stats = measure(asyncio.run(run_streams(door, server.url, playlists)))
    stats["cpu_s_per_audio_s"] = round((server.cpu_seconds() - cpu) / stats["audio_s"], 4) if stats["audio_s"] else None
    stats["within_bound"] = (
        (stats["final_latency_p95"] or 0) <= LATENCY_BOUND_S and stats["streams_behind"] == 0 and stats["streams_refused"] == 0
    )
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--doors", nargs="+", default=list(DOORS), choices=DOORS)
    parser.add_argument("--audio-dir", type=Path, help="a folder with manifest.jsonl (default ../shared/audio, else tests/data)")
    parser.add_argument("--accuracy-streams", type=int, default=4)
    parser.add_argument("--capacity-steps", type=int, nargs="*", default=[10, 12, 13, 14, 15, 16], help="none: accuracy only")
    parser.add_argument("--server-arg", action="append", default=[], help="extra `stt-gateway serve` argument (repeatable)")
    parser.add_argument("--step-seconds", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "doors.json")
    args = parser.parse_args(argv)

    clips = load_corpus(args.audio_dir)
    print(f"{len(clips)} clips, {sum(c.duration for c in clips):.0f} s of speech with references", flush=True)
    server = ServerProcess(args.model, args.server_arg)
    report: dict = {"accuracy": {}, "capacity": {}}
    try:
        parts = split_evenly(clips, args.accuracy_streams)
        from .corpus import playlist

        for door in args.doors:
            print(f"[{door}] accuracy: corpus over {args.accuracy_streams} real-time streams", flush=True)
            report["accuracy"][door] = phase(server, door, [playlist(part) for part in parts])
        best, steps = 0, []
        for n in args.capacity_steps:
            print(f"[native] capacity: {n} streams", flush=True)
            stats = phase(server, "native", capacity_playlists(clips, n, args.step_seconds, rotation=n))
            steps.append(stats)
            if not stats["within_bound"]:
                break
            best = n
        report["capacity"]["native"] = {"steps": steps, "max_realtime_streams": best}
        for door in (d for d in args.doors if d != "native"):
            held, door_steps = 0, []
            for n in (best, best - 1) if best else ():
                print(f"[{door}] capacity: {n} streams", flush=True)
                stats = phase(server, door, capacity_playlists(clips, n, args.step_seconds, rotation=best))
                door_steps.append(stats)
                if stats["within_bound"]:
                    held = n
                    break
            report["capacity"][door] = {"steps": door_steps, "max_realtime_streams": held}
    finally:
        server.stop()
    body = {
        "benchmark": "front doors side by side, one gateway on loopback",
        **run_stamp(),
        "model": args.model,
        "server_args": args.server_arg,
        "clips": [c.id for c in clips],
        **report,
    }
    write_results(args.out, body)
    print(table(body))
    print(f"results: {args.out}")
    return 0


def table(body: dict) -> str:
    rows = [
        "| door | first live text p50 | final latency p50 / p95 | WER | CPU s per audio s | max real-time streams |",
        "|---|---|---|---|---|---|",
    ]
    for door, a in body["accuracy"].items():
        cap = body["capacity"].get(door, {}).get("max_realtime_streams", "-")
        rows.append(
            f"| {door} | {shown(a['first_live_text_p50'], ' s')} | {shown(a['final_latency_p50'], ' s')} / "
            f"{shown(a['final_latency_p95'], ' s')} | {shown(a['wer'] and 100 * a['wer'], ' %')} | "
            f"{shown(a['cpu_s_per_audio_s'])} | {cap} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())

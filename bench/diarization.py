"""Speaker labels through the gateway: who said each word, in files and live, and what it costs.

    python -m bench.diarization                      # bench/results/diarization.json
    python -m bench.diarization --conversations 2    # a quicker look

``bench.speakers`` scores the encoder and the clustering on each turn's
speech, cut where the turns really are. This runs the whole batch path
instead, as an upload takes it: the file's VAD, its chunks decoded on the
engine, the voiced speech embedded chunk by chunk, the clustering, each
word's speaker and the segments split where the voice changes. The same
built conversations (2, 3 and 4 readers of the shared speech set, turns of
2 to 15 s, 0.3 to 1 s apart; seed 0 tuned the clustering, seed 1 did not)
are scored from the words:

- **turn attribution**: the share of turns whose words' majority speaker is
  the one the best one-to-one mapping of speakers to voices gives their
  voice (a turn Whisper decoded no word of carries no label: it is counted
  apart, as ``turns_without_words``);
- **words right**: the same, word by word;
- **speaker count**: speakers in the result against voices present.

Cost: the CPU seconds (all threads) of transcribing each conversation with
and without ``diarize``, per second of audio, and the wall time of both.
The Picovoice "diarization" clip (3 voices, no timings) is scored on its
count.

**Live** rows run the same conversations through a native stream's session
(``StreamSession`` with ``diarize``, finals only, audio sent as fast as the
engine takes it), carrying out its engine work as a runner does, and score
the finals' words the same way: the labels a stream would have sent.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from gateway.audio import decode_file, encode_samples
from gateway.core.commands import Audio, Cancel, DecodeCancelled, Decoded, DecodeFailed, Embedded, End, Submit
from gateway.core.events import Event, TranscriptFinal
from gateway.core.options import SessionOptions
from gateway.core.records import Segment, Transcription
from gateway.core.session import StreamSession
from gateway.files.diarization import Diarization
from gateway.files.transcription import BatchRequest, transcribe
from gateway.inference.engine import Engine
from gateway.inference.jobs import VoiceWindows
from gateway.inference.models import LoadSettings, ModelRegistry, all_languages

from .corpus import DEFAULT_DIRS
from .speakers import DIARIZATION_CLIP, Conversation, conversation, load_voices
from .streaming import RESULTS, run_stamp, write_results

SR = 16000


def words_said(segments: list[Segment]) -> list[tuple[float, str]]:
    """(the middle of each word in seconds, its speaker)."""
    return [
        ((w.start + w.end) / 2, (s.word_speakers[i] if s.word_speakers else s.speaker) or "?")
        for s in segments
        for i, w in enumerate(s.words)
    ]


def live(engine: Engine, model: str, samples: np.ndarray) -> list[Segment]:
    """A native stream's finals with ``diarize``."""
    options = SessionOptions(model=model, language="en", interim_results=False, diarize=True)
    return [e.segment for e in stream_events(engine, options, samples) if isinstance(e, TranscriptFinal)]


def stream_events(
    engine: Engine, options: SessionOptions, samples: np.ndarray, chunk_s: float = 0.1, speed: float | None = None
) -> list[Event]:
    """What a native stream's session tells, driven as a runner drives it
    (audio as fast as the engine takes it, or ``speed`` times real time;
    its engine work carried out)."""
    session = StreamSession(options, engine.registry, all_languages())
    futures: dict[int, object] = {}
    events: list[Event] = []

    def act() -> None:
        while actions := session.take_actions():
            for action in actions:
                if isinstance(action, Submit):
                    futures[action.request.id] = engine.submit(action.request.job)
                elif isinstance(action, Cancel):
                    future = futures.get(action.request_id)
                    if future is not None:
                        future.cancel()  # type: ignore[attr-defined]
                elif action.request_id in futures:
                    engine.promote(futures[action.request_id])  # type: ignore[arg-type]
        events.extend(session.take_events())

    def settle(wait: bool) -> None:
        for request_id, future in list(futures.items()):
            if not (wait or future.done()):  # type: ignore[attr-defined]
                continue
            del futures[request_id]
            try:
                value = future.result()  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - told to the session as a runner tells it
                session.handle(DecodeCancelled(request_id) if future.cancelled() else DecodeFailed(request_id, str(exc)))  # type: ignore[attr-defined]
            else:
                session.handle(Embedded(request_id, value) if isinstance(value, VoiceWindows) else Decoded(request_id, value))
            act()

    step = int(chunk_s * SR)
    started = time.monotonic()
    for i in range(0, samples.size, step):
        if speed is not None:
            time.sleep(max(0.0, started + i / SR / speed - time.monotonic()))
        session.handle(Audio(encode_samples(samples[i : i + step], "pcm_s16le")))
        act()
        settle(wait=False)
    session.handle(End())
    act()
    while futures:
        settle(wait=True)
    return events


def score_words(said: list[tuple[float, str]], conv: Conversation) -> dict:
    """Turn attribution, words right and the speaker count of one labelled conversation."""
    voices = conv.voices
    turn_of = []  # the turn each word lies in (None: between turns)
    for middle, _ in said:
        at = middle * SR
        turn_of.append(next((k for k, (start, end, _) in enumerate(conv.turns) if start <= at < end), None))
    names = sorted({speaker for _, speaker in said})
    agree = np.zeros((len(voices), max(1, len(names))))
    for (_, speaker), k in zip(said, turn_of, strict=True):
        if k is not None:
            agree[voices.index(conv.turns[k][2]), names.index(speaker)] += 1
    rows, cols = linear_sum_assignment(-agree)
    mapping = {voices[r]: names[c] for r, c in zip(rows, cols, strict=True) if c < len(names)}
    inside = [(speaker, k) for (_, speaker), k in zip(said, turn_of, strict=True) if k is not None]
    right_words = sum(speaker == mapping.get(conv.turns[k][2]) for speaker, k in inside)
    right_turns = heard = 0
    for k, (_, _, voice) in enumerate(conv.turns):
        mine = Counter(speaker for speaker, t in inside if t == k)
        if mine:
            heard += 1
            right_turns += mine.most_common(1)[0][0] == mapping.get(voice)
    return {
        "voices": len(voices), "found": len(names), "count_exact": len(names) == len(voices),
        "words_right": right_words / len(inside) if inside else 0.0, "turns_right": right_turns / heard if heard else 0.0,
        "turns_without_words": len(conv.turns) - heard,
    }


def timed(engine: Engine, audio: np.ndarray, request: BatchRequest) -> tuple[Transcription, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = transcribe(engine, audio, request)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio-dir", type=Path, default=DEFAULT_DIRS[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--conversations", type=int, default=4, help="per number of voices and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="which conversations (seed 0 tuned the clustering)")
    parser.add_argument("--paths", nargs="+", default=["batch", "live"], choices=["batch", "live"])
    parser.add_argument("--out", type=Path, default=RESULTS / "diarization.json")
    args = parser.parse_args(argv)

    voices = load_voices(args.audio_dir)
    engine = Engine(ModelRegistry(args.model, LoadSettings()))
    warm = np.concatenate(list(voices.values())[:1])[: 20 * SR]
    transcribe(engine, warm, BatchRequest(diarization=Diarization()))  # the model and the speaker encoder loaded
    rows = []
    for seed in args.seeds:
        rng = random.Random(seed)
        convs = [
            conversation(voices, rng.sample(sorted(voices), count), turns=rng.randint(8, 14), rng=rng)
            for count in (2, 3, 4)
            for _ in range(args.conversations)
        ]
        audio_s = sum(c.samples.size for c in convs) / SR
        for path in args.paths:
            scores, cpu_plain, cpu_diarized, wall_plain, wall_diarized = [], 0.0, 0.0, 0.0, 0.0
            for conv in convs:
                if path == "batch":
                    _, cpu, wall = timed(engine, conv.samples, BatchRequest())
                    cpu_plain, wall_plain = cpu_plain + cpu, wall_plain + wall
                    result, cpu, wall = timed(engine, conv.samples, BatchRequest(diarization=Diarization()))
                    cpu_diarized, wall_diarized = cpu_diarized + cpu, wall_diarized + wall
                    segments = result.segments
                else:
                    segments = live(engine, args.model, conv.samples)
                scores.append(score_words(words_said(segments), conv))
                print(f"{path}, seed {seed}, {len(conv.voices)} voices: {scores[-1]}", flush=True)
            row = {
                "path": path,
                "seed": seed,
                "conversations": len(scores),
                "audio_s": round(audio_s, 1),
                "turn_attribution": float(np.mean([s["turns_right"] for s in scores])),
                "turn_attribution_worst": float(np.min([s["turns_right"] for s in scores])),
                "words_right": float(np.mean([s["words_right"] for s in scores])),
                "count_exact": float(np.mean([s["count_exact"] for s in scores])),
                "count_error_mean": float(np.mean([abs(s["found"] - s["voices"]) for s in scores])),
                "turns_without_words": int(sum(s["turns_without_words"] for s in scores)),
                "by_voices": {str(n): float(np.mean([s["turns_right"] for s in scores if s["voices"] == n])) for n in (2, 3, 4)},
            }
            if path == "batch":
                row["cpu_s_per_audio_s"] = {"plain": round(cpu_plain / audio_s, 4), "diarized": round(cpu_diarized / audio_s, 4)}
                row["wall_s"] = {"plain": round(wall_plain, 1), "diarized": round(wall_diarized, 1)}
            rows.append(row)

    clip, present = DIARIZATION_CLIP
    samples = decode_file(args.audio_dir / f"{clip}.wav")
    found = {s.speaker for s in transcribe(engine, samples, BatchRequest(diarization=Diarization())).segments}
    found_live = {speaker for _, speaker in words_said(live(engine, args.model, samples))} if "live" in args.paths else set()
    engine.close()
    body = {
        "benchmark": "speaker labels through the batch path (VAD, chunks, embeddings, clustering, words) and a native stream's session",
        **run_stamp(),
        "model": args.model,
        "rows": rows,
        "diarization_clip": {"clip": clip, "voices": present, "found": len(found), "found_live": len(found_live)},
    }
    write_results(args.out, body)
    print(table(body))
    print(f"results: {args.out}")
    return 0


def table(body: dict) -> str:
    lines = [
        "| path | conversations | turn attribution (worst) | 2 / 3 / 4 voices | words right | count exact | CPU s per audio s: plain / diarized |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in body["rows"]:
        by = " / ".join(f"{100 * r['by_voices'][n]:.0f} %" for n in ("2", "3", "4"))
        cpu = r.get("cpu_s_per_audio_s")
        lines.append(
            f"| {r['path']} | seed {r['seed']}: {r['conversations']} ({r['audio_s'] / 60:.0f} min) | {100 * r['turn_attribution']:.1f} % "
            f"({100 * r['turn_attribution_worst']:.0f} %) | {by} | {100 * r['words_right']:.1f} % | {100 * r['count_exact']:.0f} % | "
            + (f"{cpu['plain']:.3f} / {cpu['diarized']:.3f} |" if cpu else "- |")
        )
    clip = body["diarization_clip"]
    lines.append(f"\n{clip['clip']}: {clip['found']} speakers found of {clip['voices']} (batch), {clip.get('found_live', '-')} (live)")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

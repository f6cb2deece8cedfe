"""Who said each part of a file: speaker windows while it is decoded, labels once it is.

As each chunk's audio passes, its voiced spans are embedded on the engine
(``EmbedJob``, batch priority, beside the chunk's decode); when the whole
file is decoded the windows are clustered (``speakers.cluster``) and every
word takes the speaker of the window nearest it. A segment holds one
speaker, so it is split at the word where the voice changes; each part
keeps its words and gets its own text and tokens. Voices a caller's
reference clip matches are named after it, the others are lettered ``A``,
``B``, ... in the order they are first heard (the contract, section 9).
Clustering is not model work: it runs on a thread of its own here, off the
event loop and off the engine's workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from gateway.audio import AudioDecodeError, AudioTooLong, decode_blocks
from gateway.audio.resample import SAMPLE_RATE
from gateway.core.records import Segment, Transcription, Word
from gateway.inference.jobs import EmbedJob, Priority, VoiceWindows
from speakers.clustering import DEFAULT_THRESHOLD, MAX_SPEAKERS, centroids, cluster, name_voices
from speakers.encoder import unit_mean
from speakers.turns import letter, runs, speaker_at

from .chunks import Span, SpeechRegion

MAX_KNOWN_SPEAKERS = 4  # as OpenAI's known_speaker_references
REFERENCE_S = (2.0, 10.0)  # a reference clip's shortest and longest audio, as OpenAI's
MAX_NAME_CHARS = 64
FLICKER_S = 1.0  # a run this short between two runs of one other voice, inside a segment, is theirs
# Voiced speech shorter than this is not embedded: its window would be mostly
# the silence it is padded with. Measured (python -m bench.diarization): the
# VAD often cuts a turn's first syllable off as a region of 0.1-0.5 s, and
# those windows clustered as a voice of their own in 2 of 3 conversations.
MIN_VOICED_S = 1.0

Tokenize = Callable[[str], tuple[int, ...]]


@dataclass(frozen=True)
class KnownSpeaker:
    name: str
    audio: np.ndarray  # 16 kHz mono, REFERENCE_S long


@dataclass(frozen=True)
class Diarization:
    """What a request asks of diarization."""

    speakers_expected: int | None = None  # 1..MAX_SPEAKERS, or None: found by the threshold
    known: tuple[KnownSpeaker, ...] = ()
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if self.speakers_expected is not None and not 1 <= self.speakers_expected <= MAX_SPEAKERS:
            raise ValueError(f"speakers_expected must be 1 to {MAX_SPEAKERS}, not {self.speakers_expected}")
        if len(self.known) > MAX_KNOWN_SPEAKERS:
            raise ValueError(f"at most {MAX_KNOWN_SPEAKERS} known speakers, not {len(self.known)}")
        names = [k.name for k in self.known]
        if len(set(names)) != len(names):
            raise ValueError("known speaker names must differ")


class ReferenceClipError(ValueError):
    """A known speaker's name or reference clip cannot be used (HTTP 400 naming ``field``)."""

    def __init__(self, message: str, field: str = "known_speaker_references"):
        super().__init__(message)
        self.field = field


def known_speaker(name: str, clip: bytes) -> KnownSpeaker:
    """A reference clip (any format FFmpeg reads) decoded and checked: 2 to 10 s of audio."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise ReferenceClipError(f"a known speaker's name is 1 to {MAX_NAME_CHARS} characters, not {len(name)}", "known_speaker_names")
    shortest, longest = REFERENCE_S
    try:
        audio = np.concatenate([block[0] for block in decode_blocks(clip, longest)] or [np.zeros(0, np.float32)])
    except AudioTooLong:
        raise ReferenceClipError(f"the reference clip of {name!r} is longer than {longest:g} s") from None
    except AudioDecodeError as exc:
        raise ReferenceClipError(f"the reference clip of {name!r} is not audio: {exc}") from None
    if audio.shape[0] < shortest * SAMPLE_RATE:
        raise ReferenceClipError(
            f"the reference clip of {name!r} is {audio.shape[0] / SAMPLE_RATE:.1f} s; it must be {shortest:g} to {longest:g} s"
        )
    return KnownSpeaker(name, audio)


def embed_job(chunk: Span, audio: np.ndarray, regions: Sequence[SpeechRegion]) -> EmbedJob:
    """The embedding of a chunk's voiced speech (``audio`` is the chunk's),
    each region of at least ``MIN_VOICED_S`` on its own."""
    start, end = chunk
    spans = (
        (max(lo, start) - start, min(hi, end) - start)
        for lo, hi in (r.voiced for r in regions)
        if lo < end and hi > start
    )
    shortest = int(MIN_VOICED_S * SAMPLE_RATE)
    return EmbedJob(audio, tuple((lo, hi) for lo, hi in spans if hi - lo >= shortest), Priority.BATCH)


def reference_job(known: KnownSpeaker) -> EmbedJob:
    return EmbedJob.whole(known.audio, Priority.BATCH)


_clustering = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speakers")


def label_later(
    result: Transcription, windows: VoiceWindows, references: Sequence[VoiceWindows], request: Diarization, tokenize: Tokenize
) -> Future[Transcription]:
    """``label`` on the clustering thread (a file's worth takes up to a few tenths of a second)."""
    return _clustering.submit(label, result, windows, references, request, tokenize)


def label(
    result: Transcription, windows: VoiceWindows, references: Sequence[VoiceWindows], request: Diarization, tokenize: Tokenize
) -> Transcription:
    """The transcription with a speaker on every segment, split where the
    voice changes. No segments (no speech): unchanged, no speakers; speech
    too short to embed: one voice."""
    if not result.segments:
        return result
    if windows.embeddings.shape[0] == 0:
        return replace(result, segments=[replace(s, speaker=letter(0)) for s in result.segments])
    labels = cluster(windows.embeddings, request.threshold, request.speakers_expected)
    named: dict[int, str] = {}
    if references:
        voices = centroids(windows.embeddings, labels)
        means = np.stack([unit_mean(r.embeddings) for r in references])
        named = {v: request.known[r].name for v, r in name_voices(voices, means, request.threshold).items()}
    pieces: list[tuple[Segment, int]] = []
    for segment in result.segments:
        pieces.extend(split(segment, windows, labels, tokenize))
    names = _names(pieces, named)
    segments = [replace(s, id=i, speaker=names[voice]) for i, (s, voice) in enumerate(pieces)]
    return replace(result, segments=segments)


def _names(pieces: Sequence[tuple[Segment, int]], named: dict[int, str]) -> dict[int, str]:
    """Known voices by name; the others A, B, ... in the order they are heard."""
    names = dict(named)
    taken = set(named.values())
    count = 0
    for _, voice in pieces:
        if voice not in names:
            while letter(count) in taken:
                count += 1
            names[voice] = letter(count)
            count += 1
    return names


def split(segment: Segment, windows: VoiceWindows, labels: np.ndarray, tokenize: Tokenize) -> list[tuple[Segment, int]]:
    """The segment as runs of one voice each, with that voice."""
    words = segment.words
    if not words:
        middle = np.array([(segment.start + segment.end) / 2])
        return [(segment, int(speaker_at(middle, windows.centres, labels)[0]))]
    voices = speaker_at(np.array([(w.start + w.end) / 2 for w in words]), windows.centres, labels)
    spans = _steady(runs(voices), words)
    if len(spans) == 1:
        return [(segment, spans[0][2])]
    parts = []
    for first, end, voice in spans:
        part = words[first:end]
        text = "".join(w.word for w in part)
        parts.append((
            replace(segment, start=part[0].start, end=part[-1].end, text=text, tokens=tokenize(text), words=part),
            voice,
        ))
    return parts


def _steady(spans: list[tuple[int, int, int]], words: Sequence[Word]) -> list[tuple[int, int, int]]:
    """Runs with the flickers smoothed away: a run under ``FLICKER_S`` between
    two runs of one other voice is that voice's (a window at a turn's edge
    or over a laugh, not a turn: a real turn has a pause, where VAD cuts)."""
    out = list(spans)
    i = 1
    while i < len(out) - 1:
        before, here, after = out[i - 1], out[i], out[i + 1]
        if before[2] == after[2] and words[here[1] - 1].end - words[here[0]].start < FLICKER_S:
            out[i - 1 : i + 2] = [(before[0], after[1], before[2])]
            i = max(1, i - 1)
        else:
            i += 1
    return out


"""Utterance segmentation: a stream of samples in, speech start/end events out.

The segmenter is a sans-I/O state machine with two states, *silent* and *in
speech*. ``feed`` cuts the incoming samples into fixed frames, asks a
``FrameClassifier`` about each, and returns the events that frame caused.
Every position is an absolute sample index counted from the first sample
ever fed: the sample count is the stream's clock.

silent -> in speech
    When the voiced frames among the last ``onset_window_ms`` add up to
    ``onset_speech_ms``: ``SpeechStart``. The utterance begins
    ``pre_roll_ms`` before the first voiced frame of that window, so that
    the soft start of a word webrtcvad missed is kept.
in speech -> silent
    After ``endpoint_ms`` of consecutive non-speech (``long_endpoint_ms``
    once the utterance is ``long_utterance_s`` long): ``SpeechEnd`` with
    reason "endpoint".
in speech -> in speech
    When the utterance reaches ``max_segment_s``: ``SpeechEnd`` with reason
    "max_length" at the quietest frame boundary in the last
    ``cut_search_s`` before the limit, and at once a ``SpeechStart`` at the
    same sample, so that the stream's speech stays contiguous.
``flush()``
    Ends the utterance in progress now (reason "flush").

The segmenter keeps no audio beyond the partial frame not yet judged; for
the utterance in progress it keeps one small record per frame (its energy
and its decision), which ``max_segment_s`` bounds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import NamedTuple, Protocol, TypeAlias

import numpy as np

from vad.detector import (
    FRAME_MS,
    SAMPLE_RATES,
    FrameClassifier,
    to_pcm16,
)


@dataclass(frozen=True)
class SegmenterConfig:
    sample_rate: int = 16000
    frame_ms: int = 30
    aggressiveness: int = 2  # 0..3 webrtcvad mode
    # Onset: while silent, speech is declared when the voiced frames among the
    # last onset_window_ms add up to onset_speech_ms. Measured at 30 ms frames
    # and aggressiveness 2, the threshold must exceed 120 ms (the most a
    # start-up or a quiet tone or noise gave within 300 ms) and stay at or
    # under 180 ms (the least the first 150 ms of a word gave, webrtcvad's
    # hangover included). 150 ms sits in the middle.
    onset_window_ms: int = 300
    onset_speech_ms: int = 150
    pre_roll_ms: int = 300  # audio kept before the first voiced frame of the onset
    endpoint_ms: int = 500  # trailing non-speech that ends an utterance
    # Past long_utterance_s, a pause of long_endpoint_ms (if shorter) ends the
    # utterance: long read speech is split at its commas instead of running
    # to max_segment_s, where a forced cut and a long final decode made
    # captions up to 2 s late (8 tiny.en streams, the shared clips).
    long_utterance_s: float = 8.0
    long_endpoint_ms: int = 250
    max_segment_s: float = 15.0  # an utterance reaching this length is cut
    # The cut goes at the quietest frame this long before the limit (at most
    # half the limit).
    cut_search_s: float = 3.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = (int, float) if f.type == "float" else int
            if isinstance(value, bool) or not isinstance(value, expected):
                raise ValueError(f"SegmenterConfig.{f.name} must be {f.type}, got {value!r}")
        _require_one_of("sample_rate", self.sample_rate, SAMPLE_RATES)
        _require_one_of("frame_ms", self.frame_ms, FRAME_MS)
        _require_range("aggressiveness", self.aggressiveness, 0, 3)
        _require_range("onset_window_ms", self.onset_window_ms, self.frame_ms, 5000, low_is="frame_ms")
        _require_range(
            "onset_speech_ms", self.onset_speech_ms, 1, self.onset_window_ms, high_is="onset_window_ms"
        )
        _require_range("pre_roll_ms", self.pre_roll_ms, 0, 10_000)
        _require_range("endpoint_ms", self.endpoint_ms, self.frame_ms, 60_000, low_is="frame_ms")
        _require_range("long_utterance_s", self.long_utterance_s, 0.0, 3600.0)
        _require_range("long_endpoint_ms", self.long_endpoint_ms, self.frame_ms, 60_000, low_is="frame_ms")
        _require_range("max_segment_s", self.max_segment_s, 1.0, 3600.0)
        # At least two frames, so that a frame end other than the newest
        # frame's lies in the search range. Longer than half the limit is
        # allowed but not used (see Segmenter), so that a caller can shorten
        # max_segment_s alone.
        _require_range(
            "cut_search_s", self.cut_search_s, 2 * self.frame_ms / 1000, 3600.0, low_is="two frames"
        )


def _require_one_of(name: str, value: object, allowed: Iterable[object]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"SegmenterConfig.{name} must be one of {allowed}, got {value!r}")


def _require_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    low_is: str | None = None,
    high_is: str | None = None,
) -> None:
    # Written as "not inside" so that NaN fails too.
    if not (low <= value <= high):
        low_text = f"{low} ({low_is})" if low_is else f"{low}"
        high_text = f"{high} ({high_is})" if high_is else f"{high}"
        raise ValueError(f"SegmenterConfig.{name} must be in {low_text}..{high_text}, got {value!r}")


@dataclass(frozen=True)
class SpeechStart:
    # Where the utterance's audio begins (pre-roll included), never before
    # the previous utterance's end and never < 0.
    start: int
    # The first voiced frame of the onset (== start after a max_length cut).
    onset: int


@dataclass(frozen=True)
class SpeechEnd:
    # Where the utterance's audio ends (exclusive); trailing silence up to the
    # endpoint is included.
    end: int
    # End of the last voiced frame in the utterance (its start if it has none,
    # which only the part after a max_length cut can lack).
    speech_end: int
    reason: str  # "endpoint" | "max_length" | "flush"


SegmentEvent: TypeAlias = SpeechStart | SpeechEnd


class FrameStats(NamedTuple):
    """What the segmenter remembers of one judged frame."""

    start: int  # absolute sample index
    end: int  # exclusive
    rms: float  # in int16 units
    voiced: bool


def quietest_cut(frames: Iterable[FrameStats], earliest: int, latest: int) -> int | None:
    """Where to cut an utterance that reached its length limit: the end of
    the quietest frame ending in (earliest, latest]. Unvoiced frames win over
    voiced ones, then the lowest RMS, then the later frame (so that a pause
    is cut at its end and the next utterance starts with speech). None if no
    frame ends in that range."""
    best: FrameStats | None = None
    for frame in frames:
        if not earliest < frame.end <= latest:
            continue
        if best is None or (frame.voiced, frame.rms) <= (best.voiced, best.rms):
            best = frame
    return None if best is None else best.end


class _Utterance:
    """The per-frame record of the utterance in progress, pre-roll included:
    enough to place an endpoint or a cut, none of the audio."""

    def __init__(self, start: int, frames: Iterable[FrameStats]) -> None:
        self.start = start
        self.frames: deque[FrameStats] = deque()
        self.speech_end = start
        self.trailing_unvoiced = 0  # frames since the last voiced one
        for frame in frames:
            self.add(frame)

    def add(self, frame: FrameStats) -> None:
        self.frames.append(frame)
        if frame.voiced:
            self.speech_end = frame.end
            self.trailing_unvoiced = 0
        else:
            self.trailing_unvoiced += 1

    def split(self, cut: int) -> tuple[int, _Utterance]:
        """Speech end of the part before ``cut``, and the part after it as a
        new utterance starting at ``cut``."""
        before = [frame for frame in self.frames if frame.end <= cut]
        after = [frame for frame in self.frames if frame.end > cut]
        speech_end = max((frame.end for frame in before if frame.voiced), default=self.start)
        return speech_end, _Utterance(cut, after)


class Classifier(Protocol):
    """Judges one frame at a time, in stream order (``FrameClassifier`` is webrtcvad)."""

    frame_samples: int

    def is_speech(self, frame: np.ndarray) -> bool: ...


class Segmenter:
    """Voice activity segmentation of one mono stream.

    Feed audio as it arrives, flush when the stream ends::

        segmenter = Segmenter(SegmenterConfig(sample_rate=16000))
        for event in segmenter.feed(samples):
            ...  # SpeechStart / SpeechEnd, positions on the stream's clock
        for event in segmenter.flush():
            ...
    """

    def __init__(self, config: SegmenterConfig = SegmenterConfig(), classifier: Classifier | None = None) -> None:
        """``classifier`` judges the frames (default: webrtcvad at the
        config's aggressiveness); it must take frames of the config's size."""
        self._config = config
        self._classifier = classifier or FrameClassifier(config.aggressiveness, config.sample_rate, config.frame_ms)
        if self._classifier.frame_samples != config.sample_rate * config.frame_ms // 1000:
            raise ValueError(
                f"the classifier takes frames of {self._classifier.frame_samples} samples; "
                f"{config.frame_ms} ms at {config.sample_rate} Hz are {config.sample_rate * config.frame_ms // 1000}"
            )
        self._frame_samples = self._classifier.frame_samples
        samples_per_ms = config.sample_rate // 1000
        self._window_frames = math.ceil(config.onset_window_ms / config.frame_ms)
        self._onset_frames = math.ceil(config.onset_speech_ms / config.frame_ms)
        self._endpoint_frames = math.ceil(config.endpoint_ms / config.frame_ms)
        self._long_endpoint_frames = min(self._endpoint_frames, math.ceil(config.long_endpoint_ms / config.frame_ms))
        self._long_samples = round(config.long_utterance_s * config.sample_rate)
        self._pre_roll = config.pre_roll_ms * samples_per_ms
        self._max_samples = round(config.max_segment_s * config.sample_rate)
        # At most half the limit: what follows a cut is then shorter than the
        # limit, so one frame never causes two cuts.
        self._cut_search = round(min(config.cut_search_s, config.max_segment_s / 2) * config.sample_rate)

        self._partial = np.zeros(self._frame_samples, dtype=np.int16)  # the frame being filled
        self._partial_len = 0
        self._samples_fed = 0
        self._frames_judged = 0
        # No utterance may start before this: the previous one's end, or the
        # last flush.
        self._floor = 0
        # Silent state: starts of the voiced frames in the onset window, and
        # the frames an onset may reach back to through pre-roll.
        self._onset_voiced: deque[int] = deque()
        self._recent: deque[FrameStats] = deque(
            maxlen=self._window_frames + math.ceil(self._pre_roll / self._frame_samples) + 1
        )
        self._utterance: _Utterance | None = None

    @property
    def config(self) -> SegmenterConfig:
        return self._config

    @property
    def in_speech(self) -> bool:
        return self._utterance is not None

    @property
    def samples_fed(self) -> int:
        return self._samples_fed

    @property
    def trailing_silence_ms(self) -> int:
        if self._utterance is None:
            return 0
        return self._utterance.trailing_unvoiced * self._config.frame_ms

    @property
    def speech_end(self) -> int | None:
        """End of the last voiced frame of the utterance in progress (where
        its trailing silence began), or None when silent."""
        return None if self._utterance is None else self._utterance.speech_end

    @property
    def endpoint_ms(self) -> int:
        """The trailing non-speech that would end the utterance in progress now."""
        frames = self._endpoint_frames if self._utterance is None else self._endpoint_frames_for(self._utterance)
        return frames * self._config.frame_ms

    def _endpoint_frames_for(self, utterance: _Utterance) -> int:
        long = self._frames_judged * self._frame_samples - utterance.start >= self._long_samples
        return self._long_endpoint_frames if long else self._endpoint_frames

    @property
    def utterance_start(self) -> int | None:
        return None if self._utterance is None else self._utterance.start

    def feed(self, samples: np.ndarray) -> list[SegmentEvent]:
        """Take mono samples at ``config.sample_rate`` (int16, or float in
        [-1, 1]) and return the events they complete, in order. A partial
        frame at the end waits for the next call."""
        pcm = to_pcm16(samples)
        self._samples_fed += pcm.shape[0]
        events: list[SegmentEvent] = []
        frame_samples = self._frame_samples
        position = 0
        if self._partial_len:
            taken = min(frame_samples - self._partial_len, pcm.shape[0])
            self._partial[self._partial_len : self._partial_len + taken] = pcm[:taken]
            self._partial_len += taken
            position = taken
            if self._partial_len < frame_samples:
                return events
            self._judge(self._partial, events)
            self._partial_len = 0
        whole_frames = (pcm.shape[0] - position) // frame_samples
        for _ in range(whole_frames):
            self._judge(pcm[position : position + frame_samples], events)
            position += frame_samples
        rest = pcm.shape[0] - position
        self._partial[:rest] = pcm[position:]
        self._partial_len = rest
        return events

    def flush(self) -> list[SegmentEvent]:
        """End the utterance in progress at the last sample fed (reason
        "flush") and start listening for an onset from scratch. The partial
        frame stays: frames keep their place on the stream's clock."""
        self._floor = self._samples_fed
        self._onset_voiced.clear()
        utterance, self._utterance = self._utterance, None
        if utterance is None:
            return []
        return [SpeechEnd(end=self._samples_fed, speech_end=utterance.speech_end, reason="flush")]

    def _judge(self, pcm: np.ndarray, events: list[SegmentEvent]) -> None:
        start = self._frames_judged * self._frame_samples
        self._frames_judged += 1
        as_float = pcm.astype(np.float64)
        rms = math.sqrt(float(as_float @ as_float) / as_float.shape[0])
        frame = FrameStats(start, start + self._frame_samples, rms, self._classifier.is_speech(pcm))
        if self._utterance is None:
            self._listen(frame, events)
        else:
            self._follow(self._utterance, frame, events)

    def _listen(self, frame: FrameStats, events: list[SegmentEvent]) -> None:
        self._recent.append(frame)
        # A frame that began before a flush belongs to the flushed past.
        if frame.voiced and frame.start >= self._floor:
            self._onset_voiced.append(frame.start)
        window_start = frame.end - self._window_frames * self._frame_samples
        while self._onset_voiced and self._onset_voiced[0] < window_start:
            self._onset_voiced.popleft()
        if len(self._onset_voiced) < self._onset_frames:
            return
        onset = self._onset_voiced[0]
        start = max(self._floor, onset - self._pre_roll, 0)
        self._utterance = _Utterance(start, [f for f in self._recent if f.end > start])
        self._onset_voiced.clear()
        self._recent.clear()
        events.append(SpeechStart(start=start, onset=onset))

    def _follow(self, utterance: _Utterance, frame: FrameStats, events: list[SegmentEvent]) -> None:
        utterance.add(frame)
        if utterance.trailing_unvoiced >= self._endpoint_frames_for(utterance):
            events.append(SpeechEnd(end=frame.end, speech_end=utterance.speech_end, reason="endpoint"))
            self._floor = frame.end
            self._utterance = None
        elif frame.end - utterance.start >= self._max_samples:
            limit = utterance.start + self._max_samples
            # The newest frame always goes to the next utterance, so that a
            # flush right after the cut cannot produce an empty one.
            latest = min(limit, frame.start)
            cut = quietest_cut(utterance.frames, limit - self._cut_search, latest)
            # A search of two frames or more, and at most half the limit, puts
            # a frame end in that range, after the utterance's start.
            assert cut is not None and utterance.start < cut < frame.end
            speech_end, rest = utterance.split(cut)
            events.append(SpeechEnd(end=cut, speech_end=speech_end, reason="max_length"))
            events.append(SpeechStart(start=cut, onset=cut))
            self._floor = cut
            self._utterance = rest

"""Who is speaking on one track of a live stream (``diarize``): embeddings asked for as speech goes by, a speaker per final.

While an utterance is heard, every ``BLOCK_S`` of new speech is sent to the
engine to be embedded (background work, like a partial: it fills idle
time). When its final is asked for, the rest of it is sent at the final's
own priority, ahead of the final's decode, and the blocks still waiting are
promoted: on two workers the embedding runs beside the decode, and it is a
few windows (about 15 ms each), so a final waits for it only by that much
at most. When both are back, the utterance's windows join the voices
(``speakers.online``: split first where the voice changes inside the
utterance), each word takes the voice of the window nearest it, and the
final carries the voice that said most of its words; partials carry the
voice the embeddings so far point to (``peek``), which the final may
correct. A failed embedding is a side path: the final takes the track's
last speaker instead.

Labels are ``A``, ``B``, ... in order of first appearance; on a stream of
several channels a channel's first voice is the channel's label and the
others ``label/B``, ``label/C``: a label once sent is never renamed, and
it cannot be known in advance whether a channel holds more than one voice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gateway.audio.resample import SAMPLE_RATE
from gateway.inference.jobs import VoiceWindows
from speakers.encoder import unit_mean
from speakers.online import OnlineVoices
from speakers.turns import letter, speaker_at

BLOCK_S = 3.0  # new speech embedded at a time while an utterance goes on (four windows)
MIN_VOICED_S = 1.0  # less audio than this is not embedded on its own: its window would be mostly padding
# A block after the first starts this much before the last one ended, so that
# its windows go on every 0.75 s as one pass over the whole utterance would.
OVERLAP_S = 1.6 - 0.75
MIN_TAIL_S = 0.3  # less new speech than this at the end adds no window worth having


@dataclass
class _Heard:
    """One utterance's embeddings: asked for up to ``embedded_to``, back in ``windows``."""

    onset: int
    embedded_to: int
    voiced_end: int | None = None  # where its last voiced frame ends, once it has ended
    windows: list[VoiceWindows] = field(default_factory=list)
    in_flight: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class SpeakerSummary:
    speaker: str
    talk_time_s: float
    segments: int

    def to_dict(self) -> dict[str, object]:
        return {"speaker": self.speaker, "talk_time_s": round(self.talk_time_s, 3), "segments": self.segments}


class TrackVoices:
    def __init__(self, label: str | None = None):
        """``label``: the channel's name on a stream of several channels (None: one channel)."""
        self._voices = OnlineVoices()
        self._label = label
        self._heard: dict[int, _Heard] = {}  # by segment id, until its final
        self._requests: dict[int, tuple[int, int]] = {}  # embed request id -> (segment id, first sample)
        self._last: int | None = None  # the voice of the latest final
        self._talk: dict[str, list[float]] = {}  # speaker -> [talk time, segments], in order of first appearance

    # -- what to embed -----------------------------------------------------------
    def started(self, segment_id: int, onset: int) -> None:
        """An utterance whose voice begins at ``onset`` (its pre-roll is left out:
        windows over silence sound alike whoever is silent, and pull voices together)."""
        self._heard[segment_id] = _Heard(onset, onset)

    def ended(self, segment_id: int, voiced_end: int) -> None:
        """Its last voiced frame: the silence up to the endpoint is not embedded either."""
        if segment_id in self._heard:
            self._heard[segment_id].voiced_end = voiced_end

    def next_block(self, segment_id: int, now: int) -> tuple[int, int] | None:
        """The span to embed while the utterance goes on, if a block of speech is waiting."""
        heard = self._heard[segment_id]
        if heard.in_flight or now - heard.embedded_to < BLOCK_S * SAMPLE_RATE:
            return None
        return self._from(heard), now

    def rest(self, segment_id: int, end: int) -> tuple[int, int] | None:
        """The span not embedded yet when the final is asked for (None: too little)."""
        heard = self._heard[segment_id]
        if heard.voiced_end is not None:
            end = min(end, heard.voiced_end)
        new = end - heard.embedded_to
        if heard.embedded_to > heard.onset:  # its windows go on from the last block's
            return (self._from(heard), end) if new >= MIN_TAIL_S * SAMPLE_RATE else None
        return (heard.onset, end) if new >= MIN_VOICED_S * SAMPLE_RATE else None

    @staticmethod
    def _from(heard: _Heard) -> int:
        """Where the next block starts: with the first, the onset; then overlapping the last."""
        if heard.embedded_to == heard.onset:
            return heard.onset
        return max(heard.onset, heard.embedded_to - int(OVERLAP_S * SAMPLE_RATE))

    def asked(self, segment_id: int, request_id: int, start: int, end: int) -> None:
        heard = self._heard[segment_id]
        heard.embedded_to = end
        heard.in_flight.add(request_id)
        self._requests[request_id] = (segment_id, start)

    def in_flight(self, segment_id: int) -> set[int]:
        return set(self._heard[segment_id].in_flight) if segment_id in self._heard else set()

    # -- what comes back -----------------------------------------------------------
    def owns(self, request_id: int) -> bool:
        return request_id in self._requests

    def embedded(self, request_id: int, windows: VoiceWindows | None) -> None:
        """An embed request's windows (None: it failed or was cancelled)."""
        asked = self._requests.pop(request_id, None)
        heard = self._heard.get(asked[0]) if asked is not None else None
        if heard is None or asked is None:
            return
        heard.in_flight.discard(request_id)
        if windows is not None and windows.embeddings.shape[0]:
            heard.windows.append(windows.shifted(asked[1] / SAMPLE_RATE))  # in track time

    def ready(self, segment_id: int) -> bool:
        """No embedding of the utterance is still out: its speaker can be told."""
        return not self.in_flight(segment_id)

    # -- speakers ------------------------------------------------------------------
    def provisional(self, segment_id: int) -> str:
        """A partial's speaker: the voice its embeddings so far point to, else the last one heard."""
        heard = self._heard.get(segment_id)
        if heard is None or not heard.windows:
            return self._name(self._last or 0)
        return self._name(self._voices.peek(unit_mean(np.concatenate([w.embeddings for w in heard.windows]))))

    def final(self, segment_id: int, is_speech: bool, seconds: float, word_times: np.ndarray) -> tuple[str, tuple[str, ...]]:
        """The speaker of an utterance's final and of each of its words (their
        middles at ``word_times``, track seconds), learned from when it is
        speech; its embeddings are let go."""
        heard = self._heard.pop(segment_id, None)
        for request_id in heard.in_flight if heard else ():
            self._requests.pop(request_id, None)
        windows = VoiceWindows.join(heard.windows) if heard else VoiceWindows.empty()
        last = self._last or 0
        if windows.embeddings.shape[0] == 0:
            voice, words = last, np.full(len(word_times), last)
        elif is_speech:
            labels = self._voices.assign_windows(windows.embeddings)
            words = speaker_at(word_times, windows.centres, labels) if len(word_times) else np.zeros(0, np.int64)
            counts = np.bincount(words if len(words) else labels)
            voice = int(np.argmax(counts))  # the voice that said most of it (a tie: the first voice)
        else:
            peeked = self._voices.peek(windows.embeddings.mean(axis=0))  # a cough does not teach the voices anything
            voice = peeked if peeked < self._voices.count else last
            words = np.full(len(word_times), voice)
        name = self._name(voice)
        if is_speech:
            self._last = voice
            talk = self._talk.setdefault(name, [0.0, 0])
            talk[0] += seconds
            talk[1] += 1
        return name, tuple(self._name(int(v)) for v in words)

    def summary(self) -> list[SpeakerSummary]:
        return [SpeakerSummary(name, talk, int(count)) for name, (talk, count) in self._talk.items()]

    def _name(self, voice: int) -> str:
        if self._label is None:
            return letter(voice)
        return self._label if voice == 0 else f"{self._label}/{letter(voice)}"


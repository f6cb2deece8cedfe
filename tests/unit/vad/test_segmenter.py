"""Segmenter: utterance start/end events over synthetic signals and real speech.

"Where the speech really is" comes from frame energy of the clips
(``speech_region``), not from webrtcvad, so these tests measure the segmenter
against something it does not compute itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import wave
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pytest

from tests.clips import DATA
from vad import FrameClassifier, Segmenter, SegmenterConfig, SpeechEnd, SpeechStart
from vad.segmenter import FrameStats, SegmentEvent, quietest_cut

CLIP_IDS = [json.loads(line)["id"] for line in (DATA / "manifest.jsonl").read_text().splitlines() if line]
SR = 16000
# The one clip with a pause longer than the default endpoint inside it.
CLIP_WITH_PAUSE = "lhotse-libri-2412-153948-0000"
# Background 24 dB below its speech and 16 dB above the -60 dBFS room bed used
# below: webrtcvad reads the step from the bed up to this background as sound.
NOISY_CLIP = "fw-stereo-left"
ONE_UTTERANCE_CLIPS = [c for c in CLIP_IDS if c != CLIP_WITH_PAUSE]


# -- signals ---------------------------------------------------------------------


def load_clip(clip_id: str) -> np.ndarray:
    with wave.open(str(DATA / f"{clip_id}.wav"), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SR)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def frame_level_db(samples: np.ndarray, hop: int) -> np.ndarray:
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-3)


def speech_threshold_db(level_db: np.ndarray) -> float:
    # Within 25 dB of the loudest frame and 10 dB above the noise floor.
    return max(level_db.max() - 25, np.percentile(level_db, 10) + 10)


def speech_region(samples: np.ndarray, sample_rate: int = SR) -> tuple[int, int]:
    """First and last sample of speech, by 10 ms frame energy."""
    hop = sample_rate // 100
    level_db = frame_level_db(samples, hop)
    loud = np.flatnonzero(level_db >= speech_threshold_db(level_db))
    return int(loud[0]) * hop, int(loud[-1] + 1) * hop


def longest_pause(samples: np.ndarray) -> tuple[int, int]:
    """The longest quiet stretch inside the speech region, by frame energy."""
    hop = SR // 100
    level_db = frame_level_db(samples, hop)
    loud = level_db >= speech_threshold_db(level_db)
    first, last = np.flatnonzero(loud)[[0, -1]]
    best = (0, 0)
    run_start = None
    for i in range(first, last + 1):
        if not loud[i] and run_start is None:
            run_start = i
        elif loud[i] and run_start is not None:
            best = max(best, (run_start, i), key=lambda run: run[1] - run[0])
            run_start = None
    return best[0] * hop, best[1] * hop


def room_bed(n: int, dbfs: float = -60.0, seed: int = 1) -> np.ndarray:
    """A quiet room: white noise, so that no stretch is digital silence."""
    return np.random.default_rng(seed).normal(0.0, 10 ** (dbfs / 20) * 32768, n)


def to_int16(signal: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


def white_noise(dbfs: float, seconds: float, seed: int = 0) -> np.ndarray:
    return to_int16(room_bed(int(seconds * SR), dbfs, seed))


def pink_noise(dbfs: float, seconds: float, seed: int = 0) -> np.ndarray:
    n = int(seconds * SR)
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(size=n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, n)
    return to_int16(noise / noise.std() * 10 ** (dbfs / 20) * 32768)


def tone(freq: float, dbfs: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return to_int16(10 ** (dbfs / 20) * 32768 * np.sqrt(2) * np.sin(2 * np.pi * freq * t))


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Ideal (FFT) resampling; fine for whole test clips."""
    n_out = len(samples) * rate_out // rate_in
    spectrum = np.fft.rfft(samples.astype(np.float64))
    out = np.zeros(n_out // 2 + 1, dtype=complex)
    kept = min(len(spectrum), len(out))
    out[:kept] = spectrum[:kept]
    return np.fft.irfft(out, n_out) * (rate_out / rate_in)


def trimmed_speech(clip_id: str) -> np.ndarray:
    samples = load_clip(clip_id)
    first, last = speech_region(samples)
    return samples[max(0, first - 800) : last + 800]


# -- running the segmenter ---------------------------------------------------------


def run(
    config: SegmenterConfig, samples: np.ndarray, chunk_sizes: Iterable[int] | None = None
) -> list[SegmentEvent]:
    """All events for ``samples`` fed in chunks of the given sizes (cycled),
    then a flush; checks the event stream is well formed."""
    segmenter = Segmenter(config)
    events: list[SegmentEvent] = []
    for chunk in chunks(samples, chunk_sizes):
        events += segmenter.feed(chunk)
    events += segmenter.flush()
    assert segmenter.samples_fed == len(samples)
    assert_well_formed(events, len(samples))
    return events


def chunks(samples: np.ndarray, chunk_sizes: Iterable[int] | None) -> Iterator[np.ndarray]:
    if chunk_sizes is None:
        yield samples
        return
    sizes = list(chunk_sizes)
    position = 0
    i = 0
    while position < len(samples):
        size = sizes[i % len(sizes)]
        yield samples[position : position + size]
        position += size
        i += 1


def run_timed(config: SegmenterConfig, samples: np.ndarray) -> list[tuple[int, SegmentEvent]]:
    """Events with the sample count at which each came out, fed frame by frame."""
    segmenter = Segmenter(config)
    step = config.sample_rate * config.frame_ms // 1000
    timed = []
    for position in range(0, len(samples), step):
        for event in segmenter.feed(samples[position : position + step]):
            timed.append((segmenter.samples_fed, event))
    timed += [(segmenter.samples_fed, event) for event in segmenter.flush()]
    return timed


def assert_well_formed(events: list[SegmentEvent], samples_fed: int) -> None:
    previous_end = 0
    start: SpeechStart | None = None
    for i, event in enumerate(events):
        if isinstance(event, SpeechStart):
            assert start is None, f"two starts without an end: {events}"
            assert previous_end <= event.start <= event.onset
            start = event
        else:
            assert isinstance(event, SpeechEnd)
            assert start is not None, f"an end without a start: {events}"
            assert start.start < event.end <= samples_fed
            assert start.start <= event.speech_end <= event.end
            assert event.reason in ("endpoint", "max_length", "flush")
            if event.reason == "max_length":
                assert events[i + 1] == SpeechStart(start=event.end, onset=event.end)
            previous_end = event.end
            start = None
    assert start is None, "the flush must close the last utterance"


def utterances(events: list[SegmentEvent]) -> list[tuple[SpeechStart, SpeechEnd]]:
    pairs = []
    for start, end in zip(events[::2], events[1::2], strict=True):
        assert isinstance(start, SpeechStart) and isinstance(end, SpeechEnd)
        pairs.append((start, end))
    return pairs


def frame_decisions(config: SegmenterConfig, samples: np.ndarray) -> np.ndarray:
    """What the segmenter's classifier decides frame by frame (webrtcvad is
    deterministic, so a second classifier on the same audio agrees)."""
    classifier = FrameClassifier(config.aggressiveness, config.sample_rate, config.frame_ms)
    size = classifier.frame_samples
    return np.array(
        [classifier.is_speech(samples[i : i + size]) for i in range(0, len(samples) - size + 1, size)]
    )


def ms(samples: int, sample_rate: int = SR) -> float:
    return samples * 1000 / sample_rate


# -- configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sample_rate", 44100),
        ("sample_rate", 16000.0),
        ("frame_ms", 25),
        ("aggressiveness", 4),
        ("aggressiveness", -1),
        ("aggressiveness", True),
        ("onset_window_ms", 20),  # shorter than a 30 ms frame
        ("onset_window_ms", 6000),
        ("onset_window_ms", "300"),
        ("onset_speech_ms", 0),
        ("onset_speech_ms", 301),  # more than the window
        ("pre_roll_ms", -1),
        ("pre_roll_ms", 10_001),
        ("endpoint_ms", 20),  # shorter than a frame
        ("endpoint_ms", 60_001),
        ("max_segment_s", 0.5),
        ("max_segment_s", math.nan),
        ("max_segment_s", math.inf),
        ("max_segment_s", "15"),
        ("cut_search_s", 0.05),  # shorter than two frames
        ("cut_search_s", 3601.0),
        ("cut_search_s", math.nan),
    ],
)
def test_config_rejects_values_out_of_range_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"SegmenterConfig\.{field} must be"):
        SegmenterConfig(**{field: value})


def test_config_accepts_the_edges_of_its_ranges() -> None:
    SegmenterConfig(frame_ms=10, onset_window_ms=10, onset_speech_ms=10, endpoint_ms=10, cut_search_s=0.02)
    SegmenterConfig(onset_speech_ms=300, pre_roll_ms=0, max_segment_s=1, cut_search_s=0.5)
    SegmenterConfig(sample_rate=8000, aggressiveness=0, max_segment_s=3600.0, cut_search_s=3600.0)
    SegmenterConfig(max_segment_s=2.0)  # cut_search_s 3.0 is then used as 1.0


def test_config_messages_name_the_allowed_range() -> None:
    with pytest.raises(ValueError, match=r"onset_speech_ms must be in 1\.\.300 \(onset_window_ms\), got 400"):
        SegmenterConfig(onset_speech_ms=400)
    with pytest.raises(
        ValueError, match=r"cut_search_s must be in 0\.06 \(two frames\)\.\.3600\.0, got 0\.05"
    ):
        SegmenterConfig(cut_search_s=0.05)


# -- silence, noise and tones ----------------------------------------------------------


def test_digital_silence_gives_no_events() -> None:
    segmenter = Segmenter()
    assert segmenter.feed(np.zeros(10 * SR, dtype=np.int16)) == []
    assert (segmenter.in_speech, segmenter.utterance_start, segmenter.trailing_silence_ms) == (False, None, 0)
    assert segmenter.samples_fed == 10 * SR
    assert segmenter.flush() == []


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
@pytest.mark.parametrize("aggressiveness", [2, 3])
@pytest.mark.parametrize(
    "noise",
    [
        pytest.param(lambda: white_noise(-60, 10.0), id="white-60dBFS"),
        pytest.param(lambda: white_noise(-50, 10.0), id="white-50dBFS"),
        pytest.param(lambda: pink_noise(-55, 10.0), id="pink-55dBFS"),
        pytest.param(
            lambda: np.concatenate([np.zeros(SR, np.int16), white_noise(-50, 5.0)]), id="silence-then-noise"
        ),
    ],
)
def test_low_noise_gives_no_events(noise, aggressiveness: int, frame_ms: int) -> None:
    config = SegmenterConfig(aggressiveness=aggressiveness, frame_ms=frame_ms)
    assert run(config, noise()) == []


@pytest.mark.parametrize("aggressiveness", [2, 3])
@pytest.mark.parametrize(
    "signal",
    [
        pytest.param(lambda: white_noise(-40, 5.0), id="white-40dBFS"),
        pytest.param(lambda: white_noise(-30, 5.0), id="white-30dBFS"),
        pytest.param(lambda: pink_noise(-40, 5.0), id="pink-40dBFS"),
        pytest.param(lambda: tone(100, -40, 5.0), id="100Hz-40dBFS"),
        pytest.param(lambda: tone(440, -40, 5.0), id="440Hz-40dBFS"),
        pytest.param(lambda: tone(1000, -40, 5.0), id="1kHz-40dBFS"),
        pytest.param(lambda: tone(3000, -40, 5.0), id="3kHz-40dBFS"),
        pytest.param(lambda: tone(7000, -10, 5.0), id="7kHz-10dBFS"),
    ],
)
def test_stationary_noise_and_tones_do_not_start_speech(signal, aggressiveness: int) -> None:
    # The default onset (150 ms voiced within 300 ms) is what absorbs the
    # 90-120 ms webrtcvad calls speech at the start of any sound; at 120 ms
    # the 100 Hz tone and the -30 dBFS white noise here would trigger.
    assert run(SegmenterConfig(aggressiveness=aggressiveness), signal()) == []


@pytest.mark.parametrize("aggressiveness", [0, 1, 2, 3])
@pytest.mark.parametrize(
    "signal",
    [
        pytest.param(lambda: white_noise(-20, 20.0), id="white-20dBFS"),
        pytest.param(lambda: tone(1000, -20, 20.0), id="1kHz-20dBFS"),
    ],
)
def test_loud_noise_and_tones_pass_as_speech_and_are_cut_at_the_length_limit(
    signal, aggressiveness: int
) -> None:
    # A webrtcvad limitation, recorded so that nobody relies on the opposite:
    # loud stationary sound is "speech" at every aggressiveness. The length
    # limit keeps it from becoming one endless utterance.
    events = run(SegmenterConfig(aggressiveness=aggressiveness), signal())
    assert events[0] == SpeechStart(start=0, onset=0)
    assert [e.reason for e in events if isinstance(e, SpeechEnd)] == ["max_length", "flush"]


# -- real speech --------------------------------------------------------------------------


@pytest.mark.parametrize("clip_id", CLIP_IDS)
def test_every_clip_yields_speech_starting_where_the_speech_starts(clip_id: str) -> None:
    samples = load_clip(clip_id)
    first, last = speech_region(samples)
    config = SegmenterConfig()
    timed = run_timed(config, samples)
    events = [event for _, event in timed]
    assert_well_formed(events, len(samples))
    emitted_at, start = timed[0]
    assert isinstance(start, SpeechStart)
    assert abs(ms(start.onset - first)) <= 150
    assert start.start == max(0, start.onset - config.pre_roll_ms * SR // 1000)
    # Latency of the decision: the onset needs 150 ms of voiced frames.
    assert ms(emitted_at - first) <= 200
    # Nothing of the speech falls outside the utterances.
    found = utterances(events)
    assert found[0][0].start <= first and found[-1][1].end >= last


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
@pytest.mark.parametrize("clip_id", [c for c in ONE_UTTERANCE_CLIPS if c != NOISY_CLIP])
def test_speech_silence_speech_gives_two_utterances_where_the_speech_is(clip_id: str, frame_ms: int) -> None:
    clip = load_clip(clip_id)
    first, last = speech_region(clip)
    gap = np.zeros(3 * SR)
    signal = to_int16(
        np.concatenate([gap[:SR], clip, gap, clip, gap[:SR]]) + room_bed(2 * len(clip) + 5 * SR)
    )
    offsets = (SR, 4 * SR + len(clip))
    config = SegmenterConfig(frame_ms=frame_ms)
    found = utterances(run(config, signal))
    assert len(found) == 2
    for (start, end), offset in zip(found, offsets, strict=True):
        assert abs(ms(start.onset - (offset + first))) <= 300
        assert abs(ms(end.speech_end - (offset + last))) <= 300
        assert end.reason == "endpoint"
        endpoint_frames = math.ceil(config.endpoint_ms / frame_ms)
        assert end.end - end.speech_end == endpoint_frames * frame_ms * SR // 1000


@pytest.mark.parametrize("clip_id", ONE_UTTERANCE_CLIPS)
def test_speech_digital_silence_speech_gives_two_utterances_where_the_speech_is(clip_id: str) -> None:
    # Digital silence between the clips (each keeps its own background).
    # FrameClassifier keeps the silence from webrtcvad; fed to it, the second
    # onset came up to 0.63 s early.
    clip = load_clip(clip_id)
    first, last = speech_region(clip)
    signal = np.concatenate([clip, np.zeros(3 * SR, np.int16), clip])
    found = utterances(run(SegmenterConfig(), signal))
    assert len(found) == 2
    for (start, end), offset in zip(found, (0, len(clip) + 3 * SR), strict=True):
        assert start.start <= offset + first and end.end >= offset + last
        assert abs(ms(start.onset - (offset + first))) <= 300
        # leopard-en ends in a breath 10 dB over its background, voiced to
        # the end of the clip: +0.49 s after the speech by energy.
        assert -300 <= ms(end.speech_end - (offset + last)) <= 550


def test_noisy_clip_after_a_quiet_room_starts_early_but_loses_nothing() -> None:
    clip = load_clip(NOISY_CLIP)
    first, last = speech_region(clip)
    gap = np.zeros(3 * SR)
    signal = to_int16(
        np.concatenate([gap[:SR], clip, gap, clip, gap[:SR]]) + room_bed(2 * len(clip) + 5 * SR)
    )
    found = utterances(run(SegmenterConfig(), signal))
    assert len(found) == 2
    for (start, end), offset in zip(found, (SR, 4 * SR + len(clip)), strict=True):
        assert start.start <= offset + first and end.end >= offset + last
        # The onset sits where the clip's background begins, 0.3 s before the voice.
        assert -350 <= ms(start.onset - (offset + first)) <= 150
        assert abs(ms(end.speech_end - (offset + last))) <= 400


def test_a_long_pause_inside_a_clip_ends_the_utterance_there() -> None:
    clip = load_clip(CLIP_WITH_PAUSE)
    pause_start, pause_end = longest_pause(clip)
    assert ms(pause_end - pause_start) > 700
    found = utterances(run(SegmenterConfig(), clip))
    assert len(found) == 2
    (_, first_end), (second_start, _) = found
    assert first_end.reason == "endpoint"
    assert abs(ms(first_end.speech_end - pause_start)) <= 300
    assert abs(ms(second_start.onset - pause_end)) <= 300
    # The second utterance's pre-roll stops at the first one's end.
    assert second_start.start == first_end.end


@pytest.mark.parametrize("background", ["room", "digital-silence"])
@pytest.mark.parametrize("word_ms", [150, 250])
@pytest.mark.parametrize("clip_id", CLIP_IDS)
def test_short_words_are_not_missed(clip_id: str, word_ms: int, background: str) -> None:
    # The first word_ms of each clip's speech ("It", "She", "He", "Der",
    # "Mis-", "If", "I"), faded in and out, alone.
    clip = load_clip(clip_id)
    first, _ = speech_region(clip)
    word = clip[first : first + word_ms * SR // 1000].astype(np.float64)
    fade = np.linspace(0.0, 1.0, SR // 100)
    word[: len(fade)] *= fade
    word[-len(fade) :] *= fade[::-1]
    signal = np.concatenate([np.zeros(SR), word, np.zeros(SR)])
    if background == "room":
        signal = signal + room_bed(len(signal))
    found = utterances(run(SegmenterConfig(), to_int16(signal)))
    assert len(found) == 1
    assert abs(ms(found[0][0].onset - SR)) <= 100


# -- onset rule ------------------------------------------------------------------------------


def tone_bursts(burst_ms: int, gap_ms: int, count: int = 12) -> np.ndarray:
    burst = tone(1000, -20, burst_ms / 1000)
    gap = np.zeros(gap_ms * SR // 1000, np.int16)
    return np.concatenate([np.zeros(SR // 2, np.int16)] + [np.concatenate([burst, gap])] * count)


def expected_onset(voiced: np.ndarray, config: SegmenterConfig) -> tuple[int, int] | None:
    """(first voiced frame, frame that completes the onset) by the rule as
    written: the first time the voiced frames among the last onset_window_ms
    total onset_speech_ms."""
    window = math.ceil(config.onset_window_ms / config.frame_ms)
    needed = math.ceil(config.onset_speech_ms / config.frame_ms)
    for k in range(len(voiced)):
        in_window = np.flatnonzero(voiced[max(0, k - window + 1) : k + 1]) + max(0, k - window + 1)
        if len(in_window) >= needed:
            return int(in_window[0]), k
    return None


@pytest.mark.parametrize(
    ("onset_window_ms", "onset_speech_ms"), [(300, 150), (300, 90), (210, 150), (600, 300), (90, 90)]
)
@pytest.mark.parametrize(
    ("burst_ms", "gap_ms"),
    [(30, 90), (30, 150), (30, 240), (30, 600), (60, 180), (60, 300), (90, 300), (90, 600)],
)
def test_onset_follows_the_voiced_frames_in_the_window(
    burst_ms: int, gap_ms: int, onset_window_ms: int, onset_speech_ms: int
) -> None:
    # Tone bursts in digital silence make patterns of voiced frames; the
    # segmenter's first onset must be the one the rule gives on those frames.
    config = SegmenterConfig(onset_window_ms=onset_window_ms, onset_speech_ms=onset_speech_ms)
    signal = tone_bursts(burst_ms, gap_ms)
    expected = expected_onset(frame_decisions(config, signal), config)
    timed = run_timed(config, signal)
    if expected is None:
        assert timed == []
        return
    onset_frame, completing_frame = expected
    emitted_at, start = timed[0]
    assert isinstance(start, SpeechStart)
    assert start.onset == onset_frame * 480
    assert emitted_at == (completing_frame + 1) * 480
    assert start.start == max(0, start.onset - config.pre_roll_ms * SR // 1000)


def test_onset_patterns_include_both_outcomes() -> None:
    # Guards the test above against patterns that all trigger, or none.
    config = SegmenterConfig()
    outcomes = {
        expected_onset(frame_decisions(config, tone_bursts(b, g)), config) is None
        for b, g in [(30, 240), (60, 180), (90, 300)]
    }
    assert outcomes == {True, False}


# -- endpoint, pre-roll and state properties -----------------------------------------------


def test_endpoint_comes_after_endpoint_ms_of_non_speech_and_state_follows() -> None:
    config = SegmenterConfig(endpoint_ms=450)  # 15 frames of 30 ms
    clip = load_clip("wlk-libri-7902-96591-0000")
    segmenter = Segmenter(config)
    (started,) = segmenter.feed(clip)
    assert isinstance(started, SpeechStart) and segmenter.in_speech
    assert segmenter.utterance_start == started.start
    # Silence, frame by frame: trailing silence counts up, then the endpoint.
    trailing = [segmenter.trailing_silence_ms]
    end = None
    frame = np.zeros(480, dtype=np.int16)
    for _ in range(40):
        out = segmenter.feed(frame)
        if out:
            (end,) = out
            break
        trailing.append(segmenter.trailing_silence_ms)
    assert isinstance(end, SpeechEnd) and end.reason == "endpoint"
    # Each silent frame adds 30 ms (the clip's own quiet tail started the count).
    assert all(b - a == 30 for a, b in itertools.pairwise(trailing))
    assert trailing[-1] == 420
    assert end.end - end.speech_end == 15 * 480
    assert end.end == segmenter.samples_fed - len(clip) % 480
    assert (segmenter.in_speech, segmenter.utterance_start, segmenter.trailing_silence_ms) == (False, None, 0)


@pytest.mark.parametrize("chunk", [160, 1234, 1600])
def test_speech_end_marks_where_the_trailing_silence_began(chunk: int) -> None:
    config = SegmenterConfig(endpoint_ms=900)
    clip = load_clip("wlk-libri-7902-96591-0000")
    segmenter = Segmenter(config)
    assert segmenter.speech_end is None
    seen = []
    for piece in chunks(np.concatenate([clip, np.zeros(SR // 2, np.int16)]), [chunk]):
        segmenter.feed(piece)
        if segmenter.in_speech and segmenter.trailing_silence_ms:
            seen.append((segmenter.speech_end, segmenter.trailing_silence_ms))
    # However the audio is chunked, the silence start stays put while it grows.
    late = [end for end, trailing in seen if trailing >= 300]
    assert late and len(set(late)) == 1
    start, stop = speech_region(clip)
    assert 0 <= late[0] - stop <= 300 * SR // 1000
    end_event = [e for e in segmenter.feed(np.zeros(SR, np.int16)) if isinstance(e, SpeechEnd)][0]
    assert end_event.speech_end == late[0]
    assert segmenter.speech_end is None


@pytest.mark.parametrize("pre_roll_ms", [0, 100, 300, 2000])
def test_pre_roll_reaches_back_from_the_onset_but_not_before_zero(pre_roll_ms: int) -> None:
    clip = load_clip("leopard-de")  # speech after 0.77 s of quiet
    (start, _), *_ = utterances(run(SegmenterConfig(pre_roll_ms=pre_roll_ms), clip))
    assert start.onset > 0
    assert start.start == max(0, start.onset - pre_roll_ms * SR // 1000)


def test_flush_mid_utterance_ends_it_at_the_last_sample_and_restarts_onset() -> None:
    clip = load_clip("ds-arctic-a0024")  # continuous speech from 0.2 s to 3.75 s
    config = SegmenterConfig()
    segmenter = Segmenter(config)
    cut = 2 * SR + 123  # not on a frame boundary
    (started,) = segmenter.feed(clip[:cut])
    assert isinstance(started, SpeechStart) and segmenter.in_speech
    (end,) = segmenter.flush()
    assert isinstance(end, SpeechEnd)
    assert (end.end, end.reason) == (cut, "flush")
    assert cut - 480 <= end.speech_end <= cut
    assert (segmenter.in_speech, segmenter.utterance_start, segmenter.trailing_silence_ms) == (False, None, 0)
    assert segmenter.flush() == []
    # The speech goes on; a new utterance needs a fresh onset: 150 ms of
    # voiced frames that start after the flush.
    emitted_at = None
    for position in range(cut, len(clip), 480):
        out = segmenter.feed(clip[position : position + 480])
        if out:
            (restart,) = out
            emitted_at = segmenter.samples_fed
            break
    assert emitted_at is not None and isinstance(restart, SpeechStart)
    assert restart.start == cut  # pre-roll stops at the flush
    assert restart.onset >= cut
    assert emitted_at - restart.onset >= 150 * SR // 1000


def test_flush_in_silence_returns_nothing_and_no_utterance_reaches_back_past_it() -> None:
    clip = load_clip("leopard-en")
    first, _ = speech_region(clip)
    flush_at = first + 800  # 50 ms into the speech: too early for an onset
    segmenter = Segmenter()
    assert segmenter.feed(clip[:flush_at]) == []
    assert segmenter.flush() == []
    (start,) = segmenter.feed(clip[flush_at:])
    assert isinstance(start, SpeechStart)
    assert start.start >= flush_at and start.onset >= flush_at


CHUNKINGS = {
    "1": [1],
    "7": [7],
    "1234": [1234],
    "mixed": [0, 479, 1, 480, 481, 0, 3000, 13],
}


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_chunk_sizes_do_not_change_the_events(chunking: str) -> None:
    # Speech, a pause longer than the endpoint, speech longer than the length
    # limit, a partial frame at the end: every kind of event.
    signal = np.concatenate(
        [load_clip("ds-ldc93s1"), np.zeros(SR, np.int16), load_clip("wlk-libri-7902-96591-0000")[: SR + 4321]]
    )
    config = SegmenterConfig(max_segment_s=2.0, cut_search_s=0.6)
    whole = run(config, signal)
    assert {e.reason for e in whole if isinstance(e, SpeechEnd)} == {"endpoint", "max_length", "flush"}
    assert run(config, signal, CHUNKINGS[chunking]) == whole


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_input_gives_the_same_events_as_int16(dtype: type) -> None:
    signal = np.concatenate([load_clip("leopard-en"), np.zeros(SR, np.int16), load_clip("ds-ldc93s1")])
    as_int16 = run(SegmenterConfig(), signal)
    assert len(as_int16) >= 4
    assert run(SegmenterConfig(), (signal / 32768).astype(dtype), [1000]) == as_int16


def test_float_input_beyond_full_scale_is_clipped() -> None:
    louder = load_clip("ds-ldc93s1").astype(np.float64) * 24
    assert np.abs(louder).max() > 32768
    assert run(SegmenterConfig(), (louder / 32768).astype(np.float32)) == run(
        SegmenterConfig(), to_int16(louder)
    )


def test_feed_rejects_what_is_not_mono_audio() -> None:
    segmenter = Segmenter()
    with pytest.raises(ValueError, match="mono"):
        segmenter.feed(np.zeros((480, 2), dtype=np.int16))
    with pytest.raises(TypeError, match="int32"):
        segmenter.feed(np.zeros(480, dtype=np.int32))
    assert segmenter.samples_fed == 0


# -- max length ------------------------------------------------------------------------------


def assert_cuts_follow_the_rule(
    config: SegmenterConfig, signal: np.ndarray, events: list[SegmentEvent], in_speech: bool = True
) -> int:
    """Check every max_length cut against the rule applied straight to the
    frames; returns the number of cuts."""
    frame = config.sample_rate * config.frame_ms // 1000
    max_samples = round(config.max_segment_s * config.sample_rate)
    search = round(min(config.cut_search_s, config.max_segment_s / 2) * config.sample_rate)
    voiced = frame_decisions(config, signal)
    frames = signal[: len(voiced) * frame].reshape(-1, frame).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    found = utterances(events)
    cuts = 0
    for (start, end), (next_start, _) in itertools.pairwise(found):
        assert end.end - start.start <= max_samples
        if end.reason != "max_length":
            continue
        cuts += 1
        assert next_start.start == end.end  # contiguous: no gap, no overlap
        # Among frames ending in (limit - search, limit], short of the frame
        # that reached the limit: unvoiced first, then lowest RMS, then later.
        limit = start.start + max_samples
        latest = min(limit, math.ceil(limit / frame) * frame - frame)
        candidates = [k for k in range(len(voiced)) if limit - search < (k + 1) * frame <= latest]
        best = min(candidates, key=lambda k: (bool(voiced[k]), rms[k], -k))
        assert end.end == (best + 1) * frame
        if in_speech:
            # ...which is a quiet frame: 6 dB or more under the window's
            # median (8.7 to 44 dB measured).
            assert rms[best] <= np.median(rms[candidates]) / 2
    assert found[-1][1].end - found[-1][0].start <= max_samples
    return cuts


@pytest.mark.parametrize(("max_segment_s", "cut_search_s"), [(15.0, 3.0), (4.0, 1.5), (2.5, 1.0), (2.5, 3.0)])
def test_long_speech_is_cut_at_the_quietest_frame_before_the_limit(
    max_segment_s: float, cut_search_s: float
) -> None:
    # About 42 s of speech without a pause: the clips trimmed to their speech,
    # twice over. (2.5, 3.0): the search shrinks to half the limit.
    speech = np.concatenate([trimmed_speech(c) for c in ONE_UTTERANCE_CLIPS] * 2)
    config = SegmenterConfig(max_segment_s=max_segment_s, cut_search_s=cut_search_s)
    events = run(config, speech)
    reasons = [e.reason for e in events if isinstance(e, SpeechEnd)]
    assert reasons == ["max_length"] * (len(reasons) - 1) + ["flush"]
    assert len(reasons) >= math.ceil(len(speech) / round(max_segment_s * SR))
    assert assert_cuts_follow_the_rule(config, speech, events) == len(reasons) - 1


def test_the_cut_search_can_reach_into_the_pre_roll() -> None:
    # A limit so short, and a pre-roll so long, that the search range starts
    # before the onset: the frames of the pre-roll, which the segmenter saw
    # before it declared speech, are candidates too, and being unvoiced they
    # win. (With the defaults the range starts 11.7 s after the onset.)
    speech = np.concatenate([np.zeros(SR, np.int16)] + [trimmed_speech(c) for c in ONE_UTTERANCE_CLIPS])
    signal = to_int16(speech + room_bed(len(speech)))
    config = SegmenterConfig(pre_roll_ms=1000, max_segment_s=1.2, cut_search_s=0.6)
    events = run(config, signal)
    first_start, first_end = utterances(events)[0]
    assert first_end.reason == "max_length"
    assert first_start.start + round(0.6 * SR) < first_start.onset
    assert first_end.end < first_start.onset
    assert assert_cuts_follow_the_rule(config, signal, events, in_speech=False) > 10


def test_trailing_silence_after_a_cut_counts_only_frames_after_the_cut() -> None:
    # A loud tone (voiced throughout) that goes silent just before the 2 s
    # limit: the cut lands in the silence, and the next utterance's endpoint
    # counts its silence from the cut, not from the end of the tone.
    config = SegmenterConfig(pre_roll_ms=0, endpoint_ms=300, max_segment_s=2.0, cut_search_s=0.6)
    signal = np.concatenate([tone(440, -20, 1.74), np.zeros(2 * SR, np.int16)])  # 58 frames of tone
    voiced = frame_decisions(config, signal)
    segmenter = Segmenter(config)
    events: list[SegmentEvent] = []
    trailing_after_cut = None
    for position in range(0, len(signal), 480):
        out = segmenter.feed(signal[position : position + 480])
        if any(isinstance(e, SpeechEnd) and e.reason == "max_length" for e in out):
            trailing_after_cut = segmenter.trailing_silence_ms
            frames_fed = segmenter.samples_fed
        events += out
    assert_well_formed(events + segmenter.flush(), len(signal))
    first, second = utterances(events)
    assert first[0] == SpeechStart(start=0, onset=0)
    assert first[1].reason == "max_length"
    cut = first[1].end
    # The cut: the last unvoiced frame ending at or before the limit (32000),
    # short of the frame that reached it (31680..32160).
    unvoiced_ends = [(k + 1) * 480 for k in np.flatnonzero(~voiced) if (k + 1) * 480 <= 31680]
    assert voiced[:58].all() and len(unvoiced_ends) >= 2
    assert cut == unvoiced_ends[-1]
    assert first[1].speech_end == (np.flatnonzero(voiced)[-1] + 1) * 480
    assert trailing_after_cut == ms(frames_fed - cut)
    assert second[0] == SpeechStart(start=cut, onset=cut)
    assert second[1] == SpeechEnd(end=cut + 300 * SR // 1000, speech_end=cut, reason="endpoint")


def test_continuous_sound_is_cut_into_utterances_of_at_most_the_limit() -> None:
    # Two minutes of a loud tone: the per-utterance frame record stays bounded
    # because every utterance is cut at 15 s.
    events = run(SegmenterConfig(), tone(1000, -20, 120.0), [SR])
    found = utterances(events)
    assert len(found) == 9
    assert all(end.end - start.start <= 15 * SR for start, end in found)


def _frames(*specs: tuple[float, bool]) -> list[FrameStats]:
    return [FrameStats(k * 480, (k + 1) * 480, rms, voiced) for k, (rms, voiced) in enumerate(specs)]


def test_quietest_cut_prefers_unvoiced_then_lowest_then_latest() -> None:
    frames = _frames((5.0, True), (9.0, False), (7.0, False), (1.0, True), (7.0, False), (8.0, True))
    assert quietest_cut(frames, earliest=0, latest=6 * 480) == 5 * 480  # unvoiced 7.0, the later one
    assert quietest_cut(frames, earliest=3 * 480, latest=6 * 480) == 5 * 480
    assert quietest_cut(frames, earliest=0, latest=4 * 480) == 3 * 480  # unvoiced 7.0 beats voiced 1.0
    all_voiced = [frames[0], frames[3], frames[5]]
    assert quietest_cut(all_voiced, earliest=0, latest=6 * 480) == 4 * 480  # then the lowest


def test_quietest_cut_only_considers_frames_ending_in_the_range() -> None:
    frames = _frames((0.0, False), (9.0, True), (8.0, True), (0.0, False))
    # Frame ends: 480, 960, 1440, 1920; (960, 1920] holds the last two.
    assert quietest_cut(frames, earliest=960, latest=1920) == 1920
    assert quietest_cut(frames, earliest=960, latest=1919) == 1440
    assert quietest_cut(frames, earliest=1000, latest=1010) is None


# -- other sample rates and frame sizes ------------------------------------------------------


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
@pytest.mark.parametrize("clip_id", ["ds-arctic-a0024", "leopard-en", "wlk-libri-7902-96591-0000"])
def test_8_khz_speech_silence_speech_gives_two_utterances(clip_id: str, frame_ms: int) -> None:
    rate = 8000
    clip = resample(load_clip(clip_id), SR, rate)
    first, last = speech_region(to_int16(clip), rate)
    gap = np.zeros(3 * rate)
    signal = np.concatenate([gap[:rate], clip, gap, clip, gap[:rate]])
    signal = to_int16(signal + room_bed(len(signal)))
    config = SegmenterConfig(sample_rate=rate, frame_ms=frame_ms)
    found = utterances(run(config, signal))
    assert len(found) == 2
    for (start, end), offset in zip(found, (rate, 4 * rate + len(clip)), strict=True):
        assert abs(ms(start.onset - (offset + first), rate)) <= 300
        assert abs(ms(end.speech_end - (offset + last), rate)) <= 300
        assert end.end - end.speech_end == math.ceil(500 / frame_ms) * frame_ms * rate // 1000


@pytest.mark.parametrize("rate", [32000, 48000])
def test_higher_sample_rates_find_the_speech(rate: int) -> None:
    clip = resample(load_clip("ds-arctic-a0024"), SR, rate)
    first, last = speech_region(to_int16(clip), rate)
    signal = to_int16(np.concatenate([np.zeros(rate), clip, np.zeros(rate)]) + room_bed(len(clip) + 2 * rate))
    found = utterances(run(SegmenterConfig(sample_rate=rate), signal))
    assert len(found) == 1
    (start, end) = found[0]
    assert abs(ms(start.onset - (rate + first), rate)) <= 150
    assert abs(ms(end.speech_end - (rate + last), rate)) <= 300


def test_config_is_kept_and_frozen() -> None:
    config = SegmenterConfig(endpoint_ms=600)
    assert Segmenter(config).config is config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.endpoint_ms = 700  # type: ignore[misc]


def test_a_long_utterance_ends_at_a_shorter_pause() -> None:
    gap = np.zeros(SR * 350 // 1000, np.int16)  # between long_endpoint_ms and endpoint_ms
    parts = [trimmed_speech("ds-arctic-a0024"), gap, trimmed_speech("leopard-en"), gap, trimmed_speech("fw-stereo-left")]
    samples = np.concatenate(parts)
    first_gap = len(parts[0])
    second_gap = first_gap + len(gap) + len(parts[2])
    config = SegmenterConfig(long_utterance_s=8.0, long_endpoint_ms=250)
    segmenter = Segmenter(config)
    events = segmenter.feed(samples) + segmenter.flush()
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    # The pause after 4 s of speech is too short to end it; the same pause
    # after 9 s is enough.
    assert len(ends) == 2 and ends[0].reason == "endpoint"
    assert second_gap < ends[0].end <= second_gap + len(gap)
    assert not any(first_gap < e.end <= first_gap + len(gap) for e in ends)
    # Without the rule the pauses do not split anything.
    plain = Segmenter(dataclasses.replace(config, long_utterance_s=3600.0))
    assert len([e for e in plain.feed(samples) + plain.flush() if isinstance(e, SpeechEnd)]) == 1


def test_endpoint_ms_reports_the_pause_that_would_end_the_utterance_now() -> None:
    segmenter = Segmenter(SegmenterConfig(endpoint_ms=510, long_utterance_s=2.0, long_endpoint_ms=240))
    assert segmenter.endpoint_ms == 510
    speech = trimmed_speech("ds-arctic-a0024")
    segmenter.feed(speech[: SR])
    assert segmenter.in_speech and segmenter.endpoint_ms == 510
    segmenter.feed(speech[SR : 3 * SR])
    assert segmenter.endpoint_ms == 240

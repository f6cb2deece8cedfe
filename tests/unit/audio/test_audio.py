"""Wire encodings, resampling and file decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest

from bench.soak import corrupted, eight_bit_wav, mp3_of
from gateway.audio import (
    ALAW_TO_FLOAT,
    MULAW_TO_FLOAT,
    AudioDecodeError,
    StreamResampler,
    decode_file,
    decode_samples,
    encode_samples,
    float_to_alaw,
    float_to_mulaw,
)
from tests.clips import CLIPS, ROOT, load_clip


def test_mulaw_expansion_matches_g711():
    # ITU-T G.711 reference points (16-bit linear): 0xFF and 0x7F are the two
    # zeros, 0x80 and 0x00 the extremes, 0xEF is the first step.
    as_int = np.round(MULAW_TO_FLOAT * 32768).astype(int)
    assert as_int[0xFF] == 0 and as_int[0x7F] == 0
    assert as_int[0x80] == 32124 and as_int[0x00] == -32124
    assert as_int[0xFE] == 8 and as_int[0x7E] == -8
    assert list(as_int[0x80:0x100]) == sorted(as_int[0x80:0x100], reverse=True)


def test_mulaw_round_trip_is_close():
    x = np.sin(np.linspace(0, 200, 8000)).astype(np.float32) * 0.5
    back = decode_samples(float_to_mulaw(x).tobytes(), "mulaw")
    assert np.max(np.abs(back - x)) < 0.02


def test_alaw_expansion_matches_g711():
    # ITU-T G.711 A-law reference points (16-bit linear): 0xD5 and 0x55 are
    # the smallest steps either side of zero, 0xAA and 0x2A the extremes.
    as_int = np.round(ALAW_TO_FLOAT * 32768).astype(int)
    assert as_int[0xD5] == 8 and as_int[0x55] == -8
    assert as_int[0xAA] == 32256 and as_int[0x2A] == -32256
    assert sorted(set(np.abs(as_int))) == sorted(set(np.abs(as_int[0x80:])))  # symmetric
    # every code decodes to a distinct level, and encoding it gives the code back
    assert len(set(as_int)) == 256
    assert list(float_to_alaw(ALAW_TO_FLOAT)) == list(range(256))


def test_alaw_round_trip_is_close():
    x = np.sin(np.linspace(0, 200, 8000)).astype(np.float32) * 0.5
    back = decode_samples(float_to_alaw(x).tobytes(), "alaw")
    assert np.max(np.abs(back - x)) < 0.02


@pytest.mark.parametrize("encoding, width", [("pcm_s16le", 2), ("pcm_s32le", 4), ("pcm_f32le", 4), ("mulaw", 1), ("alaw", 1)])
def test_encodings_round_trip_and_refuse_partial_samples(encoding, width):
    x = (np.random.default_rng(0).uniform(-0.9, 0.9, 1000)).astype(np.float32)
    data = encode_samples(x, encoding)
    assert len(data) == 1000 * width
    assert np.max(np.abs(decode_samples(data, encoding) - x)) < (0.04 if width == 1 else 1e-4)
    if width > 1:
        with pytest.raises(ValueError, match=f"multiple of {width}"):
            decode_samples(data[:-1], encoding)


def test_float_audio_with_nan_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        decode_samples(np.array([0.0, np.nan], "<f4").tobytes(), "pcm_f32le")


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_stream_resampler_keeps_length_and_pitch(rate):
    seconds = 2
    t = np.arange(rate * seconds) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    resampler = StreamResampler(rate)
    out = [resampler.resample(tone[i : i + rate // 50]) for i in range(0, len(tone), rate // 50)]
    out.append(resampler.flush())
    y = np.concatenate(out)
    assert abs(len(y) - 16000 * seconds) <= 1
    spectrum = np.abs(np.fft.rfft(y[2000:-2000]))
    peak = np.argmax(spectrum) * 16000 / len(y[2000:-2000])
    assert abs(peak - 440) < 2


def test_16k_input_passes_through_unchanged():
    x = np.arange(100, dtype=np.float32)
    assert StreamResampler(16000).resample(x) is x


def _encode_with_pyav(samples: np.ndarray, container: str, codec: str, rate: int, layout: str) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        channels = 2 if layout == "stereo" else 1
        data = np.tile(samples, (channels, 1)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize("container, codec", [("flac", "flac"), ("ogg", "libopus"), ("mp3", "libmp3lame")])
def test_files_in_other_formats_decode_to_16k_mono(container, codec):
    import soxr

    clip = load_clip("ds-ldc93s1")
    rate = 48000
    stereo = soxr.resample(clip, 16000, rate).astype(np.float32)
    data = _encode_with_pyav(stereo, container, codec, rate, "stereo")
    decoded = decode_file(data)
    assert abs(len(decoded) / 16000 - CLIPS["ds-ldc93s1"].duration) < 0.1
    n = min(len(decoded), len(clip))
    # Same waveform after the round trip (codec delay aside): strong correlation at some lag.
    best = max(np.corrcoef(decoded[lag : lag + n - 2000], clip[: n - 2000])[0, 1] for lag in range(0, 1200, 8))
    assert best > 0.8


def test_garbage_and_audio_less_files_are_refused():
    with pytest.raises(AudioDecodeError, match="not decodable audio"):
        decode_file(b"this is plainly not audio" * 100)
    with pytest.raises(AudioDecodeError):
        decode_file(b"")


# -- bounded decoding (issue 11) ----------------------------------------------------
def test_a_file_that_claims_more_than_the_limit_is_refused_before_decoding():
    from gateway.audio import AudioTooLong

    bomb = eight_bit_wav(1, 373_000)  # 103 hours at 16 kHz: 24 GB of float samples
    with pytest.raises(AudioTooLong, match="103.6 hours long; the limit is 7200 s") as refused:
        decode_file(bomb, max_seconds=7200)
    assert refused.value.claimed_s == pytest.approx(373_000)


def test_decoding_stops_at_the_limit_whatever_the_header_says(monkeypatch):
    from gateway.audio import AudioTooLong, container

    monkeypatch.setattr(container, "_claimed_seconds", lambda c, s: None)  # a header that says nothing
    path = CLIPS["lhotse-libri-2412-153948-0000"].path  # 11.7 s
    with pytest.raises(AudioTooLong, match="decodes to more; the limit is 5 s"):
        decode_file(path, max_seconds=5)
    assert len(decode_file(path, max_seconds=12)) == int(11.66 * 16000)


def test_audio_below_4_khz_is_refused():
    with pytest.raises(AudioDecodeError, match="100 Hz"):
        decode_file(eight_bit_wav(100, 373_000))  # an hour of "audio" from 373 KB


def test_an_mp3_with_a_few_corrupt_bytes_decodes_around_them():
    clip = load_clip("lhotse-libri-2412-153948-0000")
    damaged = corrupted(mp3_of(clip))
    samples = decode_file(damaged)  # the first damaged frame used to refuse the whole file
    assert abs(len(samples) - len(clip)) < 0.5 * 16000


# -- every channel layout (issue 19) -----------------------------------------------------
_LAYOUT_CHECK = """
import json
import numpy as np
from bench.soak import multichannel_flac
from gateway.audio import decode_file
for channels in range(1, 9):
    planes = decode_file(multichannel_flac(channels, 3.0), keep_channels=True)
    rms = np.sqrt((planes ** 2).mean(axis=1))
    print(json.dumps({"shape": planes.shape, "rms": rms.tolist()}), flush=True)
"""


def test_files_of_1_to_8_channels_decode_apart_in_their_order():
    import json
    import subprocess
    import sys

    # In a child process: a decoder that crashes (an 8-channel 7.1 FLAC made
    # PyAV's planar frames segfault, and took every live call with it) fails
    # this test instead of ending the test run.
    done = subprocess.run([sys.executable, "-c", _LAYOUT_CHECK], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, f"the decoder died ({done.returncode}): {done.stdout}{done.stderr}"
    rows = done.stdout.splitlines()
    assert len(rows) == 8
    for channels, row in enumerate(map(json.loads, rows), start=1):
        assert row["shape"] == [channels, 48000], row
        # channel c carries a tone of amplitude (c + 1) / 20: RMS (c + 1) / 20 / sqrt(2), in order
        assert row["rms"] == pytest.approx([(c + 1) / 20 / np.sqrt(2) for c in range(channels)], abs=2e-3), row


def test_a_file_of_more_channels_than_are_transcribed_apart_is_refused():
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=16000, layout="hexadecagonal")  # 16 channels
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000 * 16), np.int16), format="s16", layout="hexadecagonal")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(AudioDecodeError, match="16 channels; 1 to 8"):
        decode_file(buf.getvalue(), keep_channels=True)
    assert decode_file(buf.getvalue()).shape == (16000,)  # downmixed, it is one channel

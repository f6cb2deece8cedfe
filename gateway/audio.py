"""Audio in: wire encodings, resampling to Whisper's 16 kHz, and file decoding.

Pure functions and one small stateful resampler; no I/O beyond reading the
bytes a caller hands in.
"""

from __future__ import annotations

import io
import os

import numpy as np

SAMPLE_RATE = 16000  # what the VAD and Whisper work on

BYTES_PER_SAMPLE = {"pcm_s16le": 2, "pcm_f32le": 4, "mulaw": 1}


def _mulaw_table() -> np.ndarray:
    """G.711 µ-law byte -> linear sample in [-1, 1] (ITU-T G.711 expansion)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    linear = np.where(sign != 0, -magnitude, magnitude)
    return (linear / 32768.0).astype(np.float32)


MULAW_TO_FLOAT = _mulaw_table()


def decode_samples(data: bytes, encoding: str) -> np.ndarray:
    """Wire bytes -> float32 samples in [-1, 1]; refuses a partial sample."""
    width = BYTES_PER_SAMPLE[encoding]
    if len(data) % width:
        raise ValueError(
            f"{encoding} audio needs a whole number of {width}-byte samples; "
            f"got {len(data)} bytes. Send frames whose length is a multiple of {width}."
        )
    if encoding == "pcm_s16le":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if encoding == "pcm_f32le":
        samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(samples)):
            raise ValueError("pcm_f32le audio contains NaN or infinite samples")
        return np.clip(samples, -1.0, 1.0)
    return MULAW_TO_FLOAT[np.frombuffer(data, dtype=np.uint8)]


def encode_samples(samples: np.ndarray, encoding: str) -> bytes:
    """float32 samples in [-1, 1] -> wire bytes (clients, tests, benchmarks)."""
    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if encoding == "pcm_s16le":
        return (x * 32767.0).round().astype("<i2").tobytes()
    if encoding == "pcm_f32le":
        return x.astype("<f4").tobytes()
    return float_to_mulaw(x).tobytes()


def float_to_mulaw(samples: np.ndarray) -> np.ndarray:
    """G.711 µ-law compression of float samples in [-1, 1]."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


class StreamResampler:
    """Chunk-by-chunk resampling to 16 kHz with soxr (identity at 16 kHz).

    soxr withholds a few samples of filter delay until ``flush``, so the
    output count always trails the input; times stay sample-exact because
    the delay is compensated, not added.
    """

    def __init__(self, input_rate: int):
        self.input_rate = input_rate
        self._stream = None
        if input_rate != SAMPLE_RATE:
            import soxr

            self._stream = soxr.ResampleStream(input_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def resample(self, samples: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=False)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, np.float32)
        return self._stream.resample_chunk(np.zeros(0, np.float32), last=True)


class AudioDecodeError(ValueError):
    pass


def decode_file(source: bytes | str | os.PathLike) -> np.ndarray:
    """Any container/codec FFmpeg reads -> float32 mono 16 kHz (stereo is downmixed)."""
    import av

    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    chunks: list[np.ndarray] = []
    try:
        with av.open(handle, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioDecodeError("the file is not decodable audio (it has no audio stream)")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except AudioDecodeError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, IndexError, ValueError) as exc:
        raise AudioDecodeError(f"the file is not decodable audio ({exc})") from None
    if not chunks:
        return np.zeros(0, np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)

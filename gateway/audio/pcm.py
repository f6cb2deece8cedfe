"""Wire encodings of live audio: bytes <-> float32 samples in [-1, 1].

Pure functions; the session core decodes what clients send with these, the
client and the benchmarks encode with them.
"""

from __future__ import annotations

import numpy as np

BYTES_PER_SAMPLE = {"pcm_s16le": 2, "pcm_s32le": 4, "pcm_f32le": 4, "mulaw": 1, "alaw": 1}


def _mulaw_table() -> np.ndarray:
    """G.711 µ-law byte -> linear sample in [-1, 1] (ITU-T G.711 expansion)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    linear = np.where(sign != 0, -magnitude, magnitude)
    return (linear / 32768.0).astype(np.float32)


def _alaw_table() -> np.ndarray:
    """G.711 A-law byte -> linear sample in [-1, 1] (ITU-T G.711 expansion)."""
    a = np.arange(256, dtype=np.int32) ^ 0x55  # even bits are inverted on the wire
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    linear = np.where(a & 0x80, magnitude, -magnitude)  # A-law's sign bit set means positive
    return (linear / 32768.0).astype(np.float32)


MULAW_TO_FLOAT = _mulaw_table()
ALAW_TO_FLOAT = _alaw_table()


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
    if encoding == "pcm_s32le":
        return (np.frombuffer(data, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    if encoding == "pcm_f32le":
        samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(samples)):
            raise ValueError("pcm_f32le audio contains NaN or infinite samples")
        return np.clip(samples, -1.0, 1.0)
    table = MULAW_TO_FLOAT if encoding == "mulaw" else ALAW_TO_FLOAT
    return table[np.frombuffer(data, dtype=np.uint8)]


def encode_samples(samples: np.ndarray, encoding: str) -> bytes:
    """float32 samples in [-1, 1] -> wire bytes (clients, tests, benchmarks)."""
    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if encoding == "pcm_s16le":
        return bytes((x * 32767.0).round().astype("<i2").tobytes())
    if encoding == "pcm_s32le":
        return bytes((x.astype(np.float64) * 2147483647.0).round().astype("<i4").tobytes())
    if encoding == "pcm_f32le":
        return x.astype("<f4").tobytes()
    if encoding == "alaw":
        return float_to_alaw(x).tobytes()
    return float_to_mulaw(x).tobytes()


def float_to_mulaw(samples: np.ndarray) -> np.ndarray:
    """G.711 µ-law compression of float samples in [-1, 1]."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return np.asarray(~(sign | (exponent << 4) | mantissa) & 0xFF, dtype=np.uint8)


def float_to_alaw(samples: np.ndarray) -> np.ndarray:
    """G.711 A-law compression of float samples in [-1, 1]."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(pcm >= 0, 0x80, 0)
    magnitude = np.minimum(np.abs(pcm), 32767)
    exponent = np.clip(np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 7, 0, 7)
    mantissa = np.where(exponent == 0, magnitude >> 4, magnitude >> (exponent + 3)) & 0x0F
    return np.asarray((sign | (exponent << 4) | mantissa) ^ 0x55, dtype=np.uint8)

"""Audio files: any container and codec FFmpeg reads, decoded to 16 kHz mono."""

from __future__ import annotations

import io
import os

import numpy as np

from .resample import SAMPLE_RATE


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

"""Audio files: any container and codec FFmpeg reads, decoded to 16 kHz.

``decode_blocks`` decodes a file a packet at a time, so that a caller can
look at two hours of eight channels without holding them: each block is
float32 of shape (channels, samples), mono unless the channels are kept
apart. ``decode_file`` joins the blocks, for files known to be small.

An upload's cost is bounded before it is spent: a file whose container says
it is longer than ``max_seconds`` is refused before decoding, and decoding
stops at ``max_seconds`` whatever the header said (a few hundred kilobytes
of 8-bit audio with a 1 Hz header decode to a hundred hours). Sample rates
under ``MIN_SAMPLE_RATE`` are not audio a model can hear. Corrupt packets
are skipped, as players skip them, and a change of format mid-file gets a
resampler of its own instead of failing the file.

Frames are resampled to *packed* float (one plane, channels interleaved)
and split here: a planar frame of a 7.1 layout comes out of PyAV 18's
resampler with 9 planes for 8 channels, and its ``to_ndarray`` crashes the
process (SIGSEGV) on the ninth. Packed frames have one plane whatever the
layout.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .resample import SAMPLE_RATE

MIN_SAMPLE_RATE = 4000  # telephony is 8 kHz; below 4 kHz nothing is left of speech
MAX_CHANNELS = 8  # a file's channels kept apart (multichannel transcription)

Source = bytes | str | os.PathLike[str]


class AudioDecodeError(ValueError):
    pass


class AudioTooLong(AudioDecodeError):
    """The file is longer than the caller's limit (HTTP 413)."""

    def __init__(self, limit_s: float, claimed_s: float | None = None):
        self.limit_s = limit_s
        self.claimed_s = claimed_s
        said = f"the file says it is {claimed_s / 3600:.1f} hours long" if claimed_s else "the file decodes to more"
        super().__init__(f"{said}; the limit is {limit_s:g} s of audio ({limit_s / 3600:.2g} hours)")


def _claimed_seconds(container: Any, stream: Any) -> float | None:
    """The duration the container or the stream declares, if any."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE
    return None


def decode_blocks(source: Source, max_seconds: float | None = None, keep_channels: bool = False) -> Iterator[np.ndarray]:
    """The file's audio at 16 kHz, block by block as it is decoded: float32
    (channels, samples), one channel (stereo downmixed) unless ``keep_channels``.

    Raises ``AudioTooLong`` past ``max_seconds`` (None: no limit) and
    ``AudioDecodeError`` for what is not audio (or, kept apart, has more
    than ``MAX_CHANNELS`` channels). What the header says is checked before
    the first block.
    """
    import av

    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with av.open(handle, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioDecodeError("the file is not decodable audio (it has no audio stream)")
            stream = container.streams.audio[0]
            claimed = _claimed_seconds(container, stream)
            if max_seconds is not None and claimed is not None and claimed > max_seconds:
                raise AudioTooLong(max_seconds, claimed)
            rate = stream.codec_context.sample_rate
            if rate and rate < MIN_SAMPLE_RATE:
                raise AudioDecodeError(f"the file's sample rate is {rate} Hz; audio under {MIN_SAMPLE_RATE} Hz holds no speech")
            layout: Any = "mono"
            if keep_channels:
                layout = stream.codec_context.layout
                if not 1 <= len(layout.channels) <= MAX_CHANNELS:
                    raise AudioDecodeError(
                        f"the file has {len(layout.channels)} channels; 1 to {MAX_CHANNELS} are transcribed apart"
                    )
            channels = len(layout.channels) if keep_channels else 1
            decoded_s = 0.0
            resampler: Any = None
            setup: tuple[str, str, int] | None = None
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # a corrupt packet: skipped, as players skip it
                for frame in frames:
                    if frame.sample_rate < MIN_SAMPLE_RATE:
                        continue  # a corrupt header
                    decoded_s += frame.samples / frame.sample_rate
                    if max_seconds is not None and decoded_s > max_seconds:
                        raise AudioTooLong(max_seconds)
                    if (frame.format.name, frame.layout.name, frame.sample_rate) != setup:
                        if resampler is not None:  # the format changed: finish the old one
                            yield from _blocks(resampler.resample(None), channels)
                        resampler = av.AudioResampler(format="flt", layout=layout, rate=SAMPLE_RATE)
                        setup = (frame.format.name, frame.layout.name, frame.sample_rate)
                    yield from _blocks(resampler.resample(frame), channels)
            if resampler is not None:
                yield from _blocks(resampler.resample(None), channels)
    except AudioDecodeError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, IndexError, ValueError) as exc:
        raise AudioDecodeError(f"the file is not decodable audio ({exc})") from None


def _blocks(frames: list[Any], channels: int) -> Iterator[np.ndarray]:
    """Packed float frames as (channels, samples) blocks."""
    for frame in frames:
        if frame.samples:
            yield frame.to_ndarray().reshape(-1, channels).T.astype(np.float32, copy=True)


def decode_file(source: Source, max_seconds: float | None = None, keep_channels: bool = False) -> np.ndarray:
    """The whole file: float32 16 kHz mono samples, or with ``keep_channels``
    shape (channels, samples). Holds all of it: for long uploads the batch
    API reads ``decode_blocks`` instead."""
    blocks = list(decode_blocks(source, max_seconds, keep_channels))
    if not blocks:
        return np.zeros((1, 0) if keep_channels else 0, np.float32)
    planes = np.concatenate(blocks, axis=1)
    return planes if keep_channels else planes[0]

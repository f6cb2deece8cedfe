"""Audio in: wire encodings (``pcm``), resampling to 16 kHz (``resample``)
and decoding whole files (``container``). No I/O beyond the bytes a caller
hands in, nothing of the layers above."""

from .container import MAX_CHANNELS, AudioDecodeError, AudioTooLong, decode_blocks, decode_file
from .pcm import ALAW_TO_FLOAT, BYTES_PER_SAMPLE, MULAW_TO_FLOAT, decode_samples, encode_samples, float_to_alaw, float_to_mulaw
from .resample import SAMPLE_RATE, StreamResampler

__all__ = [
    "ALAW_TO_FLOAT",
    "BYTES_PER_SAMPLE",
    "MAX_CHANNELS",
    "MULAW_TO_FLOAT",
    "SAMPLE_RATE",
    "AudioDecodeError",
    "AudioTooLong",
    "StreamResampler",
    "decode_blocks",
    "decode_file",
    "decode_samples",
    "encode_samples",
    "float_to_alaw",
    "float_to_mulaw",
]

"""Speech / non-speech decisions on fixed-length frames, by webrtcvad.

webrtcvad judges one 10, 20 or 30 ms frame of 16-bit PCM at a time and keeps
an adaptive noise model between calls, so one ``FrameClassifier`` belongs to
one audio stream and must see its frames in order.

What it does, measured with webrtcvad-wheels 2.0.14 on 30 ms frames at
16 kHz (tests/unit/vad/test_detector.py pins these down):

- digital silence is never speech, but the sound that follows it is, for
  seconds at aggressiveness 0-2, even the same background as before the
  silence. ``FrameClassifier`` therefore answers for digital silence itself
  and never passes it to webrtcvad;
- a fresh model calls the first ~90 ms of any sound speech (70-140 ms seen
  across noises and frame lengths at aggressiveness 2 and 3, up to 180 ms at
  0 and 1);
- a jump in the background level after a quieter stretch (-70 to -50 dBFS
  white noise) reads as speech for seconds at 0-2, not at 3;
- at 2 and 3, once past that, stationary white noise up to -30 dBFS and
  pink or brown noise and tones up to -40 dBFS are not speech; pink or
  brown noise at -35 dBFS gives a few voiced frames (2-4 %);
- louder, noise is speech at every aggressiveness (white from -25 dBFS,
  pink or brown from -30 dBFS: 92-100 % of frames), and so are many tones
  from -30 dBFS, in no simple pattern (a 100 Hz tone at 2 is speech at
  -30 dBFS but not at -20 or -10). It is an energy and spectral-shape
  model, not a speech recogniser. Tones above 4 kHz never are speech (it
  looks at 0-4 kHz only);
- 3 loses soft speech: clips peaking at -31 to -38 dBFS keep 71-100 % of
  their speech frames voiced at 2, but only 8-44 % at 3. Hence the default
  of 2.

The segmenter's onset rule (several voiced frames within a window) absorbs
the start-up frames; loud noise is left to the recogniser downstream.
"""

from __future__ import annotations

import numpy as np
import webrtcvad

SAMPLE_RATES = (8000, 16000, 32000, 48000)
FRAME_MS = (10, 20, 30)
AGGRESSIVENESS = range(0, 4)

_INT16_MIN = -32768
_INT16_MAX = 32767
# Frames whose samples all lie within this many int16 steps of zero are
# digital silence (exact zeros, a DC offset of one step, +-1 dither).
_SILENCE_PEAK = 2
# float <-> int16 by 2**15, as soundfile and faster-whisper's decoder do, so
# that int16 audio scaled to float32 and back is bit-exact.
_FLOAT_SCALE = 32768.0


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Mono samples as int16: int16 passes through, floats in [-1, 1] are
    scaled by 2**15 and clipped (a sample at +1.0 becomes 32767)."""
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples (1-D array), got shape {samples.shape}")
    if samples.dtype == np.int16:
        return samples
    if np.issubdtype(samples.dtype, np.floating):
        scaled = np.rint(samples.astype(np.float64, copy=False) * _FLOAT_SCALE)
        return np.clip(scaled, _INT16_MIN, _INT16_MAX).astype(np.int16)
    raise TypeError(f"expected int16 or float samples, got dtype {samples.dtype}")


def validate_audio_format(sample_rate: int, frame_ms: int) -> None:
    """Raise ValueError unless webrtcvad accepts this rate and frame length."""
    if not _is_int(sample_rate) or sample_rate not in SAMPLE_RATES:
        raise ValueError(f"sample_rate must be one of {SAMPLE_RATES}, got {sample_rate!r}")
    if not _is_int(frame_ms) or frame_ms not in FRAME_MS:
        raise ValueError(f"frame_ms must be one of {FRAME_MS}, got {frame_ms!r}")


def validate_aggressiveness(aggressiveness: int) -> None:
    if not _is_int(aggressiveness) or aggressiveness not in AGGRESSIVENESS:
        raise ValueError(f"aggressiveness must be an integer 0..3, got {aggressiveness!r}")


def _is_int(value: object) -> bool:
    # bool is an int subclass and 2.0 == 2; webrtcvad rejects both.
    return isinstance(value, int) and not isinstance(value, bool)


class FrameClassifier:
    """webrtcvad on fixed frames."""

    def __init__(self, aggressiveness: int = 2, sample_rate: int = 16000, frame_ms: int = 30) -> None:
        validate_aggressiveness(aggressiveness)
        validate_audio_format(sample_rate, frame_ms)
        self.aggressiveness = aggressiveness
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: np.ndarray) -> bool:
        """Judge one frame of exactly ``frame_samples`` samples (int16, or
        float in [-1, 1]); frames must come in stream order."""
        pcm = to_pcm16(frame)
        if pcm.shape[0] != self.frame_samples:
            raise ValueError(
                f"frame must hold exactly {self.frame_samples} samples "
                f"({self.frame_ms} ms at {self.sample_rate} Hz), got {pcm.shape[0]}"
            )
        # Digital silence never reaches webrtcvad: fed to it, the background
        # that returns after it reads as speech for seconds (measured: 3 s of
        # -50 dBFS noise, 0.1 s or more of zeros, the same noise again:
        # voiced throughout at aggressiveness 0-2). Kept away, the model goes
        # on as if the silence had not been there.
        if int(np.abs(pcm.astype(np.int32)).max()) <= _SILENCE_PEAK:
            return False
        little_endian = np.ascontiguousarray(pcm, dtype="<i2")
        return bool(self._vad.is_speech(little_endian.tobytes(), self.sample_rate))

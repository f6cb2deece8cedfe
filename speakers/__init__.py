"""Who is speaking: speaker embeddings (and, next, their clustering) over numpy samples.

Pure computation, no I/O beyond reading the encoder's weights file, and
nothing from ``gateway``, like ``vad``: ``VoiceEncoder`` turns 16 kHz
samples into unit speaker embeddings.
"""

from speakers.encoder import VoiceEncoder
from speakers.features import mel_frames
from speakers.weights import WeightsError, load_weights

__all__ = ["VoiceEncoder", "WeightsError", "load_weights", "mel_frames"]

"""Who is speaking: speaker embeddings over numpy samples, and their clustering.

Pure computation, no I/O beyond reading the encoder's weights file, and
nothing from ``gateway``, like ``vad``: ``VoiceEncoder`` turns 16 kHz
samples into unit speaker embeddings; ``cluster`` tells which are one voice.
"""

from speakers.clustering import cluster
from speakers.encoder import VoiceEncoder
from speakers.features import mel_frames
from speakers.weights import WeightsError, load_weights

__all__ = ["VoiceEncoder", "WeightsError", "cluster", "load_weights", "mel_frames"]

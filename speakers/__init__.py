"""Who is speaking: speaker embeddings over numpy samples, and their clustering.

Pure computation, no I/O beyond reading the encoder's weights file, and
nothing from ``gateway``, like ``vad``: ``VoiceEncoder`` turns 16 kHz
samples into unit speaker embeddings; ``cluster`` tells which are one voice;
``speaker_at`` gives a word the speaker of the nearest window, ``runs`` the
places a segment splits, ``letter`` a speaker's name.
"""

from speakers.clustering import cluster
from speakers.encoder import VoiceEncoder
from speakers.features import mel_frames
from speakers.turns import letter, runs, speaker_at
from speakers.weights import WeightsError, load_weights

__all__ = ["VoiceEncoder", "WeightsError", "cluster", "letter", "load_weights", "mel_frames", "runs", "speaker_at"]

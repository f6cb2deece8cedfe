"""Voice activity detection and utterance segmentation over numpy samples.

Pure computation, no I/O, and nothing from ``gateway``: ``FrameClassifier``
judges single frames with webrtcvad, ``Segmenter`` turns a stream of samples
into ``SpeechStart`` / ``SpeechEnd`` events on the stream's sample clock.
"""

from vad.detector import FrameClassifier
from vad.segmenter import Classifier, Segmenter, SegmenterConfig, SegmentEvent, SpeechEnd, SpeechStart

__all__ = [
    "Classifier",
    "FrameClassifier",
    "SegmentEvent",
    "Segmenter",
    "SegmenterConfig",
    "SpeechEnd",
    "SpeechStart",
]

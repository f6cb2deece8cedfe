"""Inference: the only layer that runs the model.

``engine`` schedules decode jobs on worker threads (finals before
speculations before partials before batch); ``decoder`` decodes one piece of
audio with faster-whisper, ``guards`` judges what it produced, ``models``
finds and loads the Whisper models; ``records`` and ``jobs`` are the
vocabulary the layers above use to ask for work and read its results.
"""

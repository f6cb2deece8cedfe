"""Front doors: wire protocols over the one streaming core.

A front door is a ``Dialect`` (``dialect``): options from the upgrade
request, client frames to the core's commands, the core's events to frames,
close codes. One ``StreamRunner`` (``runner``) runs every dialect: the
socket loop, backpressure, engine work, sending. ``native`` is the gateway's
own protocol (``/v0/audio/stream``); ``openai`` (``/v1/realtime``),
``deepgram`` (``/v1/listen``) and ``assemblyai`` (``/v3/ws``) speak those
services' streaming protocols, with ``settled`` for the append-only text two
of them need. The HTTP layer opens a door the same way for all of them (``gateway.http.streams``: auth, admission, the engine
lease, metrics).
"""

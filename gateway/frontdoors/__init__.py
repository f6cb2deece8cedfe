"""Front doors: wire protocols over the one streaming core, sans I/O.

A front door is a ``Dialect`` (``dialect``): an ``Opening`` record (or a
``Refusal``) from the upgrade request, client frames to the core's
commands, the core's events to frames, close codes. ``wire`` is the one home
of the rules every dialect reads frames by. ``native`` is the gateway's own
protocol (``/v0/audio/stream``); ``openai`` (``/v1/realtime``),
``deepgram`` (``/v1/listen``), ``assemblyai`` (``/v3/ws``) and ``twilio``
(``/v0/telephony/twilio``) speak those services' protocols, with ``settled``
for the append-only text two of them need. Nothing here touches a socket:
``gateway.http.streaming`` opens every door the same way and runs it.
"""

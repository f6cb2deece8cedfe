"""Streaming front doors on the wire: the I/O half of ``gateway.frontdoors``.

``doors`` opens every streaming door the same way (origin, key, admission,
the opening record, the session registry) and ``runner`` runs the session
over the socket: backpressure, engine work, sending, metrics.
"""

"""The HTTP server: the application (``app``) and what every route shares.

``streaming`` opens every streaming front door the same way (origin, key,
admission, options, the engine lease, metrics) and runs the dialects of
``gateway.frontdoors`` over their sockets; ``batch`` is the
OpenAI-compatible file API; ``auth``, ``admission``, ``limits``, ``errors``
and ``observability`` are shared by all routes; ``demo`` serves the browser
page; ``serve`` runs it all under uvicorn, in the memory allocator that
``allocator`` chooses.
"""

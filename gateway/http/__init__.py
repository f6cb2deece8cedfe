"""The HTTP server: the application (``app``) and what every route shares.

``streams`` opens every streaming front door the same way (auth, admission,
options, the engine lease, metrics) and hands the socket to the runner of
``gateway.frontdoors``; ``batch`` is the OpenAI-compatible file API;
``auth``, ``admission``, ``limits``, ``errors`` and ``observability`` are
shared by all routes; ``demo`` serves the browser page; ``serve`` runs it
all under uvicorn.
"""

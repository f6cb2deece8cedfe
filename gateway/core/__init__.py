"""The streaming core, sans-I/O: commands in, events and engine actions out.

Nothing here imports a web framework, asyncio or json (a test holds it to
that). ``session`` is the lifecycle of one stream, ``transcriber`` the
decode policy of its audio, ``utterance`` the states of one utterance;
``commands``, ``events``, ``options`` and ``records`` are the vocabulary
every front door translates to and from.
"""

"""Append-only text from partials: what a door may send as "will not change".

Some protocols cannot take a word back: an OpenAI Realtime delta is
appended to what came before, an AssemblyAI word marked final stays. The
core's partials carry ``stable_text``, a word prefix of the utterance that
the final keeps (``gateway.core.transcriber``); these doors send the words
of it as it grows, and the rest of the final at the end, so that what a
client has joined equals the final transcript exactly.
"""

from __future__ import annotations


class SettledWords:
    """Per utterance, the words already sent as settled."""

    def __init__(self) -> None:
        self._sent: dict[int, list[str]] = {}

    def sent(self, segment_id: int) -> list[str]:
        return self._sent.get(segment_id, [])

    def grow(self, segment_id: int, stable_text: str) -> list[str]:
        """The words of ``stable_text`` not sent yet (it only grows)."""
        sent = self._sent.setdefault(segment_id, [])
        words = stable_text.split()
        new = words[len(sent) :] if words[: len(sent)] == sent else []
        sent.extend(new)
        return new

    def finish(self, segment_id: int, final_text: str) -> tuple[list[str], list[str]]:
        """(all the utterance's words, the ones not sent yet) at its final.

        The final keeps the stable prefix; if a final does not (an empty
        final after a failed decode), what was sent stands, so that the
        words a client joined are still the transcript.
        """
        sent = self._sent.pop(segment_id, [])
        words = final_text.split()
        if words[: len(sent)] != sent:
            return sent, []
        return words, words[len(sent) :]

    def forget(self, segment_id: int) -> None:
        self._sent.pop(segment_id, None)

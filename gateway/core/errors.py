"""The core's two kinds of error: the client's, and the transport's."""

from __future__ import annotations


class ProtocolError(Exception):
    """Bad input from a client, carried to it as an ``error`` event.

    ``fatal``: the session cannot go on (bad options at opening); the
    transport closes the connection after sending the event.
    """

    def __init__(self, code: str, message: str, fatal: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal


class SessionStateError(RuntimeError):
    """A command given to a session in a state that can never take it.

    Raised, not sent: it is a bug in the transport (as h11's
    ``LocalProtocolError``), such as feeding a closed session. What a client
    can do wrong is a ``ProtocolError``.
    """

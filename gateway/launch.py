"""A gateway in a child process, started and waited for: the one launcher of
the tests, the benchmarks and ``deploy/cluster.py``.

Standard library only: ``deploy/cluster.py`` runs it on a machine that may
have nothing but the gateway installed. "Serving" means ``/healthz``
answers 200; a child that exits first, or a deadline that passes, is an
error that carries the end of its log.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve_command(*args: str, python: str = sys.executable) -> list[str]:
    """``python -m gateway serve ARGS``: the command a child gateway runs."""
    return [python, "-m", "gateway", "serve", *args]


def get_json(url: str, timeout: float = 2.0) -> tuple[int, dict[str, Any]]:
    """A GET's status and JSON body (an error status too); ``OSError`` when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_until_serving(
    process: subprocess.Popen[Any], port: int, timeout: float = 120.0, host: str = "127.0.0.1", log: Path | None = None
) -> None:
    """Until the gateway on ``port`` answers ``/healthz`` with 200; ``RuntimeError``
    if ``process`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if get_json(f"http://{host}:{port}/healthz")[0] == 200:
                return
        except (OSError, ValueError):  # not listening yet, or half an answer
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            why = f"exited with {process.returncode}" if process.poll() is not None else f"did not answer within {timeout:.0f} s"
            tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
            raise RuntimeError(f"the gateway on port {port} {why}" + (f":\n{tail}" if tail else ""))
        time.sleep(0.1)


class Loopback:
    """Something listening on 127.0.0.1:``port``: its HTTP and WebSocket base URLs."""

    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@dataclass
class ServerProcess(Loopback):
    """``stt-gateway serve`` in a child process, on a port of its own, its output in ``log``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @classmethod
    def start(
        cls,
        args: Sequence[str],
        log: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120.0,
        new_session: bool = False,
    ) -> ServerProcess:
        """Start it with ``args`` (``--port`` is added) and wait until it serves.
        ``new_session``: its own process group, so a terminal's Ctrl-C reaches only its parent."""
        port = port or free_port()
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            process = subprocess.Popen(
                serve_command(*args, "--port", str(port)), stdout=out, stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None, cwd=cwd, start_new_session=new_session,
            )
        server = cls(process, port, log)
        try:
            wait_until_serving(process, port, timeout, log=log)
        except BaseException:
            server.stop()
            raise
        return server

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (it drains), then SIGKILL if it has not exited within ``timeout``."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

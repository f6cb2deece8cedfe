"""N gateway replicas behind HAProxy on this machine: `make cluster N=3`.

    python deploy/cluster.py --replicas 3 --port 8000 [-- serve options...]

The balancer listens on --port with deploy/haproxy.cfg (the file an operator
deploys, with the replicas' "server" lines written here); replica i listens
on --port + i. Options after ``--`` go to every replica's `stt-gateway
serve`. Ctrl-C (or SIGTERM) drains the replicas as a rolling stop would:
each finalises its streams, then the balancer stops.

The tests (tests/e2e/test_cluster.py) and the benchmark (bench/cluster.py) use
``Cluster`` to start the same thing on free ports.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.launch import Loopback, ServerProcess, free_port, get_json, serve_command, wait_until_serving

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "haproxy.cfg"


def balancer_config(template: str, servers: list[tuple[str, str]], stats_socket: str | None = None) -> str:
    """The HAProxy configuration with ``servers`` (name, host:port) as the
    gateways backend's replicas, in place of the template's example lines."""
    lines, in_backend, placed = [], False, False
    for line in template.splitlines():
        stripped = line.strip()
        if line and not line[0].isspace():
            in_backend = stripped == "backend gateways"
        if in_backend and stripped.startswith("server "):
            if not placed:
                lines += [f"    server {name} {address}" for name, address in servers]
                placed = True
            continue
        lines.append(line)
        if stats_socket and stripped == "global":
            lines.append(f"    stats socket {stats_socket} mode 600 level admin")
    if not placed:
        raise ValueError("the template's backend gateways has no server lines to replace")
    return "\n".join(lines) + "\n"


def haproxy_binary() -> str | None:
    """Debian's haproxy: on PATH, or in /usr/sbin (not on a non-root PATH)."""
    found = shutil.which("haproxy")
    return found or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)


@dataclass
class Replica(ServerProcess):
    """One replica: a gateway process (``gateway.launch``) with a name in the balancer."""

    name: str = ""

    @property
    def url(self) -> str:
        return self.http

    def health(self) -> dict:
        return get_json(self.url + "/healthz")[1]


@dataclass
class Cluster(Loopback):
    """Replicas of `stt-gateway serve` and one HAProxy in front of them."""

    replicas: int = 2
    port: int = 0  # the balancer's; 0: a free one (replicas then get free ones too)
    serve_args: list[str] = field(default_factory=list)
    replica_args: list[list[str]] = field(default_factory=list)  # per replica, after serve_args
    workdir: Path | None = None
    members: list[Replica] = field(default_factory=list)
    balancer: subprocess.Popen | None = None
    _own_workdir: bool = False  # made here: removed on stop, logs with it

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        haproxy = haproxy_binary()
        if haproxy is None:
            raise RuntimeError("haproxy is not installed: apt-get install haproxy (Debian's package)")
        if self.workdir is None:
            self.workdir, self._own_workdir = Path(tempfile.mkdtemp(prefix="stt-cluster-")), True
        chosen = self.port or free_port()
        ports = [chosen + i + 1 if self.port else free_port() for i in range(self.replicas)]
        self.port = chosen
        for i, port in enumerate(ports):
            name = f"replica{i + 1}"
            extra = self.replica_args[i] if i < len(self.replica_args) else []
            log = self.workdir / f"{name}.log"
            command = serve_command(
                "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(self.workdir / name), *self.serve_args, *extra
            )
            with log.open("wb") as out:
                process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            self.members.append(Replica(process, port, log, name))
        deadline = time.monotonic() + timeout
        for replica in self.members:
            wait_until_serving(replica.process, replica.port, max(0.0, deadline - time.monotonic()), log=replica.log)
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            balancer_config(
                TEMPLATE.read_text(), [(r.name, f"127.0.0.1:{r.port}") for r in self.members], str(self.workdir / "haproxy.sock")
            )
        )
        env = {**os.environ, "STT_LB_BIND": f"127.0.0.1:{self.port}"}
        with (self.workdir / "haproxy.log").open("wb") as out:
            self.balancer = subprocess.Popen(
                [haproxy, "-db", "-f", str(config)], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_until(lambda: list(self.states().values()) == ["UP"] * self.replicas, timeout=30, what="every replica UP")

    def stats(self) -> dict[str, dict[str, str]]:
        """The balancer's counters for the gateways backend, by row (replica1.., BACKEND),
        from its stats socket ("show stat"): status, scur, wretr, wredis, ..."""
        assert self.workdir is not None
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(str(self.workdir / "haproxy.sock"))
                sock.sendall(b"show stat\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except OSError:
            return {}
        rows = data.decode().splitlines()
        if not rows or not rows[0].startswith("# "):
            return {}
        header = rows[0][2:].split(",")
        found = {}
        for row in rows[1:]:
            cells = dict(zip(header, row.split(","), strict=False))
            if cells.get("pxname") == "gateways":
                found[cells["svname"]] = cells
        return found

    def states(self) -> dict[str, str]:
        """Each replica's state as the balancer sees it (UP, DOWN, ...)."""
        return {name: row["status"].split()[0] for name, row in self.stats().items() if name.startswith("replica")}

    def wait_until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.balancer is not None and self.balancer.poll() is not None:
                raise RuntimeError(f"haproxy exited:\n{self.balancer_log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout} s (balancer sees {self.states()})")
            time.sleep(0.1)

    def balancer_log(self) -> str:
        assert self.workdir is not None
        return (self.workdir / "haproxy.log").read_text(errors="replace")

    def stop(self, drain_timeout: float = 30.0) -> None:
        """Drain every replica (SIGTERM), then stop the balancer."""
        for replica in self.members:
            if replica.alive():
                replica.process.send_signal(signal.SIGTERM)
        for replica in self.members:
            try:
                replica.process.wait(timeout=drain_timeout)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()
        if self.balancer is not None and self.balancer.poll() is None:
            self.balancer.terminate()
            try:
                self.balancer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.balancer.kill()
                self.balancer.wait()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3, help="how many gateways (default 3)")
    parser.add_argument("--port", type=int, default=8000, help="the balancer's port; replica i gets port + i (default 8000)")
    parser.add_argument("serve_args", nargs="*", help="after --: options for every replica's `stt-gateway serve`")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    cluster = Cluster(args.replicas, args.port, args.serve_args)
    stop = False
    exited: set[str] = set()

    def stopping(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, stopping)
    try:
        with cluster:
            print(f"balancer: {cluster.http}  (streams: {cluster.ws}/v0/audio/stream; demo: {cluster.http}/)")
            for replica in cluster.members:
                print(f"{replica.name}: {replica.url}  pid {replica.process.pid}  log {replica.log}")
            print(f"haproxy log: {cluster.workdir}/haproxy.log  ·  Ctrl-C drains the replicas and stops", flush=True)
            while not stop:
                time.sleep(0.5)
                for replica in cluster.members:
                    if not replica.alive() and replica.name not in exited:
                        print(f"{replica.name} exited ({replica.process.returncode})", flush=True)
                        exited.add(replica.name)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

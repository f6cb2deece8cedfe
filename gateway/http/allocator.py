"""The memory allocator of a serving process: jemalloc where the system has it.

Under a steady load of streams, glibc's malloc fragments on CTranslate2's
buffers of many sizes (one per decode window length): the Python heap stays
flat while the process keeps growing. In ``bench/soak.py`` (12 real-time
streams with faults, 5 minutes) the server's RSS was 416, 419 and 432 MB
at 1 minute, the middle and the end on glibc (and rose 13 MB a minute over
11 minutes in an earlier run), against 354, 370 and 344 MB under jemalloc,
at the same CPU and final latency; a fixed mmap threshold in glibc also
kept it flat but made finals 0.15 s later.

jemalloc has to be there before the process starts, so ``serve`` replaces
itself with the same command under ``LD_PRELOAD`` (Linux only). Without the
library (``apt install libjemalloc2``) the server says so and runs on glibc.

The new process runs the same ``gateway`` package as this one, found where
this one's was: ``python -m gateway`` would put the working directory first
on ``sys.path``, and a ``gateway/`` folder there (a clone, or anything a
user happens to have) would be run instead.
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

ALLOCATORS = ("jemalloc", "system")
_REEXEC_MARK = "STT_GATEWAY_ALLOCATOR_REEXEC"  # set on the re-executed process: never loop
_PLACES = ("/usr/lib/*-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib", "/lib/*-linux-gnu")


def find_jemalloc() -> str | None:
    for place in _PLACES:
        for directory in sorted(glob.glob(place)):
            for name in ("libjemalloc.so.2", "libjemalloc.so"):
                path = Path(directory) / name
                if path.exists():
                    return str(path)
    return None


def jemalloc_loaded() -> bool:
    try:
        return "jemalloc" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def reexec_command(args: list[str]) -> list[str]:
    """This gateway's command line again, importing the package from where
    this process imported it, never from the working directory."""
    import gateway  # the package itself, wherever this module sits in it

    root = str(Path(gateway.__file__).resolve().parent.parent)
    code = f"import sys; sys.path[0] = {root!r}; from gateway.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


def use_jemalloc(args: list[str]) -> str:
    """Make sure this process runs on jemalloc: if it does not yet, replace it
    with the same command (``reexec_command``) under ``LD_PRELOAD`` (this call
    then does not return). Returns what the allocator is, for the start-up banner."""
    if jemalloc_loaded():
        return "jemalloc"
    if not sys.platform.startswith("linux"):
        return "system (jemalloc is preloaded on Linux only)"
    if os.environ.get(_REEXEC_MARK):
        return "system (jemalloc would not load)"
    library = find_jemalloc()
    if library is None:
        return "system (libjemalloc2 not found: memory may grow under load; apt install libjemalloc2)"
    preload = " ".join(p for p in (os.environ.get("LD_PRELOAD", ""), library) if p)
    env = dict(os.environ, LD_PRELOAD=preload, **{_REEXEC_MARK: "1"})
    sys.stdout.flush()
    sys.stderr.flush()
    command = reexec_command(args)
    os.execve(command[0], command, env)
    raise AssertionError("unreachable")  # pragma: no cover

"""What one upload costs the server in memory: peak RSS growth per file.

    python -m bench.uploads [--cases mono-2h,8ch-2h,silence-2h] [--out bench/results/uploads.json]

Each case starts a fresh gateway (``python -m gateway serve``: tiny.en, on
jemalloc as ``serve`` runs by default, limits raised to take the file), warms it
with a short upload, then POSTs one long FLAC and reads the process's
``VmHWM`` (peak resident set) against its RSS before the upload. The files
are made here, 16-bit FLAC at 16 kHz:

- ``mono-2h``: two hours of one channel, a clip of real speech every 5 minutes;
- ``8ch-2h``: two hours of eight channels (7.1), the same on every channel,
  staggered, sent with ``multichannel=true``;
- ``silence-2h``: two hours of digital silence (the VAD finds nothing, so
  the whole file is decoded in 28 s chunks: the most chunks a file can have).

The goal (docs/reliability.md): at most 600 MB of growth for any accepted
upload; the Kubernetes memory limit is sized from it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from .corpus import ROOT, load_corpus
from .soak import flac_of_blocks
from .streaming import ServerProcess, cpu_seconds

RESULTS = ROOT / "bench" / "results" / "uploads.json"
SR = 16000
CASES = ("mono-2h", "8ch-2h", "silence-2h")


def flac_stream(channels: int, seconds: float, speech: list[np.ndarray], every_s: float, stagger_s: float) -> bytes:
    """A FLAC of ``channels`` written 10 s at a time (never the whole file in
    memory): ``speech`` clips in turn every ``every_s``, channel c ``c *
    stagger_s`` later; silence elsewhere (no clips: all silence)."""
    block = 10 * SR
    total = int(seconds * SR)
    placed = []  # (channel, start sample, clip)
    if speech:
        for c in range(channels):
            for k, at in enumerate(np.arange(c * stagger_s, seconds - 30, every_s)):
                placed.append((c, int(at * SR), speech[(k + c) % len(speech)]))

    def blocks() -> Iterator[np.ndarray]:
        for lo in range(0, total, block):
            hi = min(total, lo + block)
            planes = np.zeros((channels, hi - lo), np.float32)
            for c, start, clip in placed:
                a, b = max(lo, start), min(hi, start + len(clip))
                if a < b:
                    planes[c, a - lo : b - lo] = clip[a - start : b - start]
            yield planes

    return flac_of_blocks(blocks(), channels, SR)


def make_case(name: str, speech: list[np.ndarray]) -> tuple[bytes, dict[str, str]]:
    if name == "mono-2h":
        return flac_stream(1, 7200, speech, 300, 0), {}
    if name == "8ch-2h":
        return flac_stream(8, 7200, speech, 300, 37), {"multichannel": "true"}
    if name == "silence-2h":
        return flac_stream(1, 7200, [], 300, 0), {}
    raise SystemExit(f"unknown case {name!r}; cases: {', '.join(CASES)}")


def memory_kb(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in status) if k in ("VmRSS", "VmHWM")}


def run_case(name: str, data: bytes, fields: dict[str, str], warmup: bytes) -> dict:
    server = ServerProcess("tiny.en", ["--max-upload-mb", "200", "--max-audio-s", "7300"])
    url = f"http://127.0.0.1:{server.port}/v1/audio/transcriptions"
    try:
        with httpx.Client(timeout=3600) as client:
            client.post(url, data={"model": "whisper-1"}, files={"file": ("w.flac", warmup)}).raise_for_status()
            before = memory_kb(server.proc.pid)
            cpu_before, started = server.cpu_seconds(), time.monotonic()
            answer = client.post(url, data={"model": "whisper-1", "response_format": "verbose_json", **fields},
                                 files={"file": (f"{name}.flac", data)})
            wall = time.monotonic() - started
        after = memory_kb(server.proc.pid)
        body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
        row = {
            "case": name, "file_mb": round(len(data) / 1e6, 2), "status": answer.status_code,
            "rss_before_mb": round(before["VmRSS"] / 1024), "peak_mb": round(after["VmHWM"] / 1024),
            "rss_after_mb": round(after["VmRSS"] / 1024),
            "peak_growth_mb": round((after["VmHWM"] - before["VmRSS"]) / 1024),
            "wall_s": round(wall, 1), "server_cpu_s": round(cpu_seconds(server.proc.pid) - cpu_before, 1),
            "segments": len(body.get("segments", [])), "duration_s": body.get("duration"),
        }
    finally:
        server.stop()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated [{','.join(CASES)}]")
    parser.add_argument("--audio-dir", type=Path, default=None, help="the speech clips (manifest.jsonl) [../shared/audio]")
    parser.add_argument("--label", default="", help="a name for this run in the results (e.g. the code's version)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    speech = [c.samples for c in load_corpus(args.audio_dir) if 4 <= c.duration <= 20][:8]
    warmup = flac_stream(1, 20, speech[:1], 300, 0)
    rows = []
    for name in args.cases.split(","):
        data, fields = make_case(name.strip(), speech)
        print(f"{name}: {len(data) / 1e6:.1f} MB", flush=True)
        rows.append(run_case(name.strip(), data, fields, warmup) | {"label": args.label})
        print(json.dumps(rows[-1]), flush=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else []
    kept = [r for r in previous if (r.get("label"), r["case"]) not in {(r2["label"], r2["case"]) for r2 in rows}]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(kept + rows, indent=2) + "\n")
    print("\n| run | case | file | status | peak RSS growth | wall | server CPU |\n|---|---|---|---|---|---|---|")
    for r in kept + rows:
        print(f"| {r['label']} | {r['case']} | {r['file_mb']} MB | {r['status']} | {r['peak_growth_mb']} MB | {r['wall_s']} s | {r['server_cpu_s']} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Replicas behind the balancer: max real-time streams of 1 and of 2 replicas on this machine.

    python -m bench.cluster                              # 1 and 2 replicas, 10 12 13 14 streams
    python -m bench.cluster --replicas 2 --steps 12 14

Each topology is deploy/cluster.py's: N `stt-gateway serve` replicas behind
HAProxy with deploy/haproxy.cfg, all on this machine. The machine's cores
are shared out, not multiplied: one replica gets the default decode threads
(--workers 2 --cpu-threads 2), each of two gets half (--workers 1
--cpu-threads 1), as two pods of one core each would. For growing N, N
concurrent real-time streams of corpus speech go through the balancer (the
streaming benchmark's clients and criteria): a step holds when final-latency
p95 <= 1.5 s, no stream falls behind (a final later than 3 s) and none is
refused. Finals are scheduled before partials, so partials thin out first:
the first partial's delay and the partial rate are reported beside. Also:
the streams each replica took, and CPU seconds per audio second of the
replicas and of the balancer. Results: bench/results/cluster.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

from deploy.cluster import Cluster

from .corpus import load_corpus
from .streaming import RESULTS, capacity_playlists, climb, cpu_seconds, measure, run_streams, shown

SPLIT = {1: ["--workers", "2", "--cpu-threads", "2"], 2: ["--workers", "1", "--cpu-threads", "1"]}


def streams_taken(cluster: Cluster) -> list[int]:
    """Streams each replica has taken so far, from its own Prometheus counter."""
    import urllib.request

    served = ('outcome="closed"', 'outcome="detached"', 'outcome="slow_consumer"')  # not the refusals
    taken = []
    for replica in cluster.members:
        text = urllib.request.urlopen(replica.url + "/metrics", timeout=5).read().decode()
        lines = [line for line in text.splitlines() if line.startswith("stt_streams_total{") and any(o in line for o in served)]
        taken.append(int(sum(float(line.rsplit(" ", 1)[1]) for line in lines)))
    return taken


def topology(replicas: int, clips, args) -> dict:
    cluster = Cluster(replicas=replicas, serve_args=["--model", args.model, "--demo", "false", "--log-level", "warning", *SPLIT[replicas]])
    with cluster:
        assert cluster.balancer is not None
        balancer = cluster.balancer.pid
        pids = [r.process.pid for r in cluster.members]

        def step(n: int) -> dict:
            print(f"[{replicas} replica(s)] {n} streams", flush=True)
            before = [cpu_seconds(pid) for pid in pids], cpu_seconds(balancer), streams_taken(cluster)
            runs = asyncio.run(run_streams(cluster.ws, capacity_playlists(clips, n, args.step_seconds, rotation=n), {}))
            stats = measure(runs)
            replica_cpu = sum(cpu_seconds(pid) for pid in pids) - sum(before[0])
            stats["cpu_s_per_audio_s"] = round(replica_cpu / stats["audio_s"], 4) if stats["audio_s"] else None
            stats["balancer_cpu_s_per_audio_s"] = (
                round((cpu_seconds(balancer) - before[1]) / stats["audio_s"], 5) if stats["audio_s"] else None
            )
            stats["per_replica"] = [after - b for after, b in zip(streams_taken(cluster), before[2])]
            print(f"    p50 {shown(stats['final_latency_p50'], ' s')}, p95 {shown(stats['final_latency_p95'], ' s')}, "
                  f"behind {stats['streams_behind']}, refused {stats['streams_refused']}, per replica {stats['per_replica']}, "
                  f"cpu/audio {stats['cpu_s_per_audio_s']} (+ balancer {stats['balancer_cpu_s_per_audio_s']})", flush=True)
            return stats

        steps, best = climb(args.steps, step)
    return {"replicas": replicas, "serve_args": SPLIT[replicas], "steps": steps, "max_realtime_streams": best}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--audio-dir", type=Path)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2], choices=sorted(SPLIT))
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 12, 13, 14])
    parser.add_argument("--step-seconds", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "cluster.json")
    args = parser.parse_args(argv)
    clips = load_corpus(args.audio_dir)
    rows = [topology(n, clips, args) for n in args.replicas]
    cores = os.cpu_count() or 1
    body = {
        "benchmark": "N replicas behind HAProxy (deploy/haproxy.cfg) on one machine, real-time streams through the balancer",
        "machine": {"cpus": cores, "platform": platform.platform(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M"), "model": args.model, "topologies": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(body, indent=2))
    print("| replicas | decode threads each | max real-time streams | streams per core | final p50 / p95 at max | first partial p50 at max "
          "| CPU s per audio s | balancer CPU s per audio s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        at = next((s for s in row["steps"] if s["streams"] == row["max_realtime_streams"]), None) or {}
        print(f"| {row['replicas']} | {' '.join(row['serve_args'])} | {row['max_realtime_streams']} | "
              f"{row['max_realtime_streams'] / cores:.1f} | {shown(at.get('final_latency_p50'), ' s')} / "
              f"{shown(at.get('final_latency_p95'), ' s')} | {shown(at.get('first_partial_p50'), ' s')} | {shown(at.get('cpu_s_per_audio_s'))} | {at.get('balancer_cpu_s_per_audio_s', '-')} |")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak test: the gateway under real load and faults for minutes; nothing lost, memory flat.

    python -m bench.soak --minutes 10 --streams 8

A real gateway (``stt-gateway serve``, tiny.en, its default limits but a
30 s idle timeout so that idle sockets are reaped within the run) is started
as a subprocess and driven over loopback by:

- ``--streams`` clients streaming real speech at real-time pace, session
  after session: most end normally, some flush mid-way, some drop the
  connection without a word (and reconnect), some open with garbage frames
  and bad JSON;
- a chaos loop, every few seconds one of: a client that stops reading, an
  idle socket, a half-sent request, an upload bomb (8-bit audio with a 1 Hz
  header), a 100 Hz file, a corrupt mp3, JSON nested 100 000 deep, a 3.6 MB
  prompt, and (issue 19) an 8-channel 7.1 FLAC upload, an upgrade with a
  request line over 8 KB, a session whose webhook URL the HTTP client
  refuses, a session whose webhook receiver trickles its answer a byte
  every 4 s, a call flooding 5000 DTMF keys; each with the answer it must get;
- a webhook sink that every session posts its finals and its end to
  (``--webhook-url``): what it received is checked against what the server
  sent, in order, at the end;
- a sampler of the server's RSS, open file descriptors, CPU and engine.

It reports utterances started against finals (client-side for the sessions
that closed normally, server-side over all of them from /metrics), error
events by code, final latency p50/p95 per window, RSS and descriptors at the
start, middle and end, refused connections and each fault's outcomes.
Results: bench/results/soak.json, and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import socket
import tempfile
import time
import wave
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.audio import encode_samples
from gateway.launch import free_port

from .corpus import load_corpus, playlist
from .streaming import RESULTS, ServerProcess, percentile, shown

SR = 16000


# -- what the clients do ---------------------------------------------------------------
class Soak:
    def __init__(self, server: ServerProcess, clips, args):
        self.server = server
        self.clips = clips
        self.args = args
        self.rng = random.Random(args.seed)
        self.started = time.monotonic()
        self.deadline = self.started + args.minutes * 60
        self.sessions: Counter[str] = Counter()
        self.started_utterances = self.finals = self.lost = 0
        self.errors: Counter[str] = Counter()
        self.latency: dict[int, list[float]] = defaultdict(list)  # window -> final latencies
        self.refused = 0
        self.faults: dict[str, Counter[str]] = defaultdict(Counter)  # fault -> outcome counts
        self.samples: list[dict] = []
        self.hooks: dict[str, dict] = {}  # delivery id -> body, as the sink received them
        self.hook_order: defaultdict[str, list[int]] = defaultdict(list)  # session -> sequences in arrival order
        self.webhooks: dict = {}  # the webhook report, made at the end
        self.sink_port = self.trickler_port = 0

    def window(self) -> int:
        return int((time.monotonic() - self.started) // (self.args.window_s))

    async def streamer(self, index: int) -> None:
        rng = random.Random(self.args.seed * 100 + index)
        await asyncio.sleep(rng.uniform(0, 5))
        while time.monotonic() < self.deadline - 20:
            kind = rng.choices(["normal", "flush", "drop", "garbage"], [0.7, 0.1, 0.1, 0.1])[0]
            chosen = rng.sample(self.clips, rng.randint(2, 4))
            try:
                await self.session(playlist(chosen).samples, kind, rng)
                self.sessions[kind] += 1
            except InvalidStatus as exc:
                self.refused += exc.response.status_code == 503
                await asyncio.sleep(2)
            except (ConnectionClosed, OSError) as exc:
                self.sessions[f"failed ({type(exc).__name__})"] += 1

    async def session(self, samples: np.ndarray, kind: str, rng: random.Random) -> None:
        events: list[tuple[dict, float]] = []
        async with websockets.connect(f"{self.server.url}/v0/audio/stream", max_size=None) as ws:
            opened = time.monotonic()

            async def receive() -> None:
                async for message in ws:
                    events.append((json.loads(message), time.monotonic() - opened))

            receiver = asyncio.create_task(receive())
            if kind == "garbage":
                await ws.send(b"\x01")
                await ws.send("{{{ not json")
                await ws.send(json.dumps({"type": "dance"}))
            half = len(samples) // 2
            for at in range(0, len(samples), 1600):
                delay = opened + at / SR - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await ws.send(encode_samples(samples[at : at + 1600], "pcm_s16le"))
                if at <= half < at + 1600:
                    if kind == "flush":
                        await ws.send(json.dumps({"type": "flush"}))
                    elif kind == "drop":
                        ws.transport.abort()  # no end, no close frame; the server finalises what it got
                        receiver.cancel()
                        return
            await ws.send(json.dumps({"type": "end"}))
            await asyncio.wait_for(receiver, 60)
        self.account(events)

    def account(self, events: list[tuple[dict, float]]) -> None:
        kinds = [e["type"] for e, _ in events]
        started = [e["segment_id"] for e, _ in events if e["type"] == "speech.started"]
        finals = [e for e, _ in events if e["type"] == "transcript.final"]
        self.started_utterances += len(started)
        self.finals += len(finals)
        if "session.closed" in kinds:
            self.lost += len(set(started) - {f["segment"]["id"] for f in finals})
        for e, _ in events:
            if e["type"] == "error":
                self.errors[e["code"]] += 1
        window = self.window()
        for e, arrival in events:
            if e["type"] == "transcript.final" and e["segment"]["text"].strip():
                self.latency[window].append(arrival - e["segment"]["end"])

    # -- faults -----------------------------------------------------------------------
    async def chaos(self) -> None:
        faults = [
            self.slow_consumer, self.idle_socket, self.half_request, self.upload_bomb,
            self.low_rate_upload, self.corrupt_mp3, self.deep_json, self.huge_prompt,
            self.eight_channel_upload, self.long_request_line, self.poisoned_webhook_url,
            self.trickling_receiver, self.dtmf_flood,
        ]
        await asyncio.sleep(10)
        while time.monotonic() < self.deadline - 40:
            fault = self.rng.choice(faults)
            try:
                outcome = await fault()
            except Exception as exc:  # a fault's client failing is an outcome too
                outcome = f"client error {type(exc).__name__}"
            self.faults[fault.__name__][outcome] += 1
            await asyncio.sleep(self.rng.uniform(5, 15))

    async def slow_consumer(self) -> str:
        """Upgrade, flood bad frames, never read: the server must drop us."""

        def flood() -> str:
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", self.server.port))
                key = base64.b64encode(os.urandom(16)).decode()
                s.sendall(
                    f"GET /v0/audio/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
                )
                if b" 101 " not in s.recv(1024):
                    return "refused"
                s.setblocking(False)
                frame = bytes([0x82, 0x81, 1, 2, 3, 4, 0x01 ^ 1]) * 100
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        s.send(frame)
                    except BlockingIOError:
                        time.sleep(0.01)
                    except OSError:
                        return "dropped (expected)"
                return "still open after 60 s"

        return await asyncio.to_thread(flood)

    async def idle_socket(self) -> str:
        async with websockets.connect(f"{self.server.url}/v0/audio/stream") as ws:
            opened = time.monotonic()
            codes = []
            try:
                async for message in ws:
                    event = json.loads(message)
                    if event["type"] == "error":
                        codes.append(event["code"])
            except ConnectionClosed:
                pass
            waited = time.monotonic() - opened
        return "closed idle_timeout (expected)" if codes == ["idle_timeout"] and waited < 40 else f"{codes} after {waited:.0f} s"

    async def half_request(self) -> str:
        def half() -> str:
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                opened = time.monotonic()
                return "dropped (expected)" if s.recv(1024) == b"" and time.monotonic() - opened < 20 else "answered"

        return await asyncio.to_thread(half)

    async def upload(self, data: bytes, **fields: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=120) as client:
            return await client.post(
                f"http://127.0.0.1:{self.server.port}/v0/audio/transcriptions",
                data={"model": "whisper-1", **fields}, files={"file": ("upload", data)},
            )

    async def upload_bomb(self) -> str:
        r = await self.upload(eight_bit_wav(1, 373_000))  # 373 KB that claim 103 hours
        return "413 (expected)" if r.status_code == 413 else f"{r.status_code}"

    async def low_rate_upload(self) -> str:
        r = await self.upload(eight_bit_wav(100, 373_000))
        return "400 (expected)" if r.status_code == 400 else f"{r.status_code}"

    async def corrupt_mp3(self) -> str:
        clip = self.rng.choice(self.clips)
        r = await self.upload(corrupted(mp3_of(clip.samples)), response_format="json")
        return "200 (expected)" if r.status_code == 200 and r.json()["text"] else f"{r.status_code}"

    async def deep_json(self) -> str:
        async with websockets.connect(f"{self.server.url}/v0/audio/stream") as ws:
            await ws.recv()
            await ws.send("[" * 100_000 + "]" * 100_000)
            event = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "end"}))
        return "invalid_message (expected)" if event.get("code") == "invalid_message" else str(event)[:60]

    async def huge_prompt(self) -> str:
        async with websockets.connect(f"{self.server.url}/v0/audio/stream", max_size=None) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "session.update", "session": {"prompt": "glossary " * 400_000}}))
            event = json.loads(await ws.recv())
        return "invalid_config (expected)" if event.get("code") == "invalid_config" else str(event)[:60]

    async def eight_channel_upload(self) -> str:
        clip = self.rng.choice(self.clips).samples
        planes = np.zeros((8, len(clip) + SR), np.float32)
        planes[self.rng.randrange(8), SR // 2 : SR // 2 + len(clip)] = clip
        r = await self.upload(multichannel_flac(8, 0, planes=planes), multichannel="true", response_format="verbose_json")
        ok = r.status_code == 200 and len({s["channel"] for s in r.json()["segments"]}) == 1
        return "200, one channel with speech (expected)" if ok else f"{r.status_code}"

    async def long_request_line(self) -> str:
        def send() -> str:
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as s:
                terms = "&".join(f"keyterm=term{i}" for i in range(700))
                s.sendall(
                    f"GET /v1/listen?{terms} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
                )
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
                return "414 and closed (expected)" if answer.startswith(b"HTTP/1.1 414") else answer[:40].decode(errors="replace")

        return await asyncio.to_thread(send)

    async def poisoned_webhook_url(self) -> str:
        url = f"{self.server.url}/v0/audio/stream?webhook_url=" + quote(f"http://127.0.0.1:{self.trickler_port}\t/hook")
        async with websockets.connect(url) as ws:
            event = json.loads(await ws.recv())
        return "invalid_config (expected)" if event.get("code") == "invalid_config" else str(event)[:60]

    async def trickling_receiver(self) -> str:
        """A short session whose own webhook receiver trickles; the stream must not notice."""
        clip = self.rng.choice(self.clips)
        url = f"{self.server.url}/v0/audio/stream?webhook_url=" + quote(f"http://127.0.0.1:{self.trickler_port}/hook")
        async with websockets.connect(url) as ws:
            await ws.recv()
            await ws.send(encode_samples(clip.samples, "pcm_s16le"))
            await ws.send(json.dumps({"type": "end"}))
            events = [json.loads(m) async for m in ws]
        return "closed normally (expected)" if events and events[-1]["type"] == "session.closed" else str(events[-1:])[:60]

    async def dtmf_flood(self) -> str:
        sid = "CA" + os.urandom(16).hex()
        async with websockets.connect(f"{self.server.url}/v0/telephony/twilio") as ws:
            await ws.send(json.dumps({"event": "start", "start": {"callSid": sid, "tracks": ["inbound"], "customParameters": {}}}))
            key = json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}})
            for _ in range(5000):
                await ws.send(key)
            await ws.send(json.dumps({"event": "stop"}))
            await ws.wait_closed()
        async with websockets.connect(f"{self.server.url}/v0/sessions/{sid}/events") as follower:
            replay = [json.loads(m) async for m in follower]
        kept = sum(e["type"] == "signal" for e in replay)
        return "bounded (expected)" if kept <= 1000 else f"{kept} signals kept"

    # -- webhook receivers ------------------------------------------------------------------
    async def start_receivers(self) -> None:
        """The sink (every session's webhook) and a receiver that trickles its answer."""

        async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                    body = json.loads(await reader.readexactly(length))
                    if body["delivery_id"] not in self.hooks:
                        self.hooks[body["delivery_id"]] = body
                        self.hook_order[body["session_id"]].append(body["sequence"])
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                for byte in b"HTTP/1.1 204 No Content\r\n\r\n":
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(4)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                pass  # the gateway gave up on it (or the soak is over)
            writer.close()

        self.sink_server = await asyncio.start_server(sink, "127.0.0.1", self.sink_port)
        self.trickle_server = await asyncio.start_server(trickle, "127.0.0.1", self.trickler_port)

    def webhook_report(self, pending: float) -> dict:
        server_finals = metric_total(self.server, "stt_stream_events_total", type="transcript.final")
        server_ends = metric_total(self.server, "stt_stream_events_total", type="session.closed")
        out_of_order = sum(order != sorted(order) for order in self.hook_order.values())
        ends_not_last = sum(
            1 for session, order in self.hook_order.items()
            if any(b["type"] == "session.completed" and b["sequence"] != max(order)
                   for b in self.hooks.values() if b["session_id"] == session)
        )
        return {
            "finals_and_ends_sent": server_finals + server_ends,
            "received": len(self.hooks),
            "pending_at_end": pending,
            "sessions_out_of_order": out_of_order,
            "sessions_whose_end_was_not_last": ends_not_last,
            "dropped": metric_total(self.server, "stt_webhook_dropped_total"),
            "errors": metric_total(self.server, "stt_webhook_errors_total"),
        }

    # -- the server, watched ---------------------------------------------------------------
    async def sampler(self) -> None:
        while True:
            self.samples.append(self.sample())
            if time.monotonic() >= self.deadline:
                return
            await asyncio.sleep(self.args.sample_s)

    def sample(self) -> dict:
        pid = self.server.proc.pid
        rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS"))
        return {
            "t_s": round(time.monotonic() - self.started, 1),
            "rss_mb": round(rss_kb / 1024, 1),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "cpu_s": round(self.server.cpu_seconds(), 1),
            "streams": int(metric_total(self.server, "stt_streams_active")),
        }


# -- hostile audio (tests/unit/audio/test_audio.py uses it too) --------------------------------------
def eight_bit_wav(rate: int, n_bytes: int) -> bytes:
    """8-bit mono noise with a ``rate`` Hz header: a few hundred KB that claim hours."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(np.random.default_rng(rate).integers(0, 256, n_bytes, dtype=np.uint8).tobytes())
    return buf.getvalue()


def mp3_of(samples: np.ndarray) -> bytes:
    """16 kHz mono samples as an mp3 (libmp3lame)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=SR, layout="mono")
        resampler = av.AudioResampler(format=stream.format, layout="mono", rate=SR, frame_size=stream.codec_context.frame_size or 1152)
        source = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt", layout="mono")
        source.sample_rate = SR
        for frame in [*resampler.resample(source), *resampler.resample(None)]:
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def multichannel_flac(channels: int, seconds: float, rate: int = SR, planes: np.ndarray | None = None) -> bytes:
    """A FLAC of ``channels`` in FFmpeg's usual layout for that count (8: 7.1):
    ``planes`` (channels, samples) at ``rate``, or channel c a quiet tone of
    amplitude (c + 1) / 20, so that a reader can tell the channels apart."""
    if planes is None:
        t = np.arange(int(seconds * rate)) / rate
        planes = np.stack([(c + 1) / 20 * np.sin(2 * np.pi * 220 * t) for c in range(channels)])
    return flac_of_blocks((planes[:, at : at + 4096] for at in range(0, planes.shape[1], 4096)), channels, rate)


def flac_of_blocks(blocks: Iterable[np.ndarray], channels: int, rate: int = SR) -> bytes:
    """16-bit FLAC of float (channels, samples) blocks, written as they come
    (bench/uploads.py writes hours of audio this way without holding it)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout=LAYOUTS[channels])
        for block in blocks:
            pcm = (np.clip(block, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)  # packed: s16 interleaved
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm), format="s16", layout=LAYOUTS[channels])
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def corrupted(data: bytes, seed: int = 1) -> bytes:
    """``data`` with 4 random bytes at 8 places past its start."""
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    for at in rng.integers(2000, max(2001, len(out) - 2000), 8):
        out[at : at + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
    return bytes(out)


def metric_total(server: ServerProcess, name: str, **labels: str) -> float:
    """The sum of a metric's samples that carry ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    body = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def run(soak: Soak) -> None:
    await soak.start_receivers()
    tasks = [asyncio.create_task(soak.streamer(i)) for i in range(soak.args.streams)]
    tasks += [asyncio.create_task(soak.chaos()), asyncio.create_task(soak.sampler())]
    await asyncio.gather(*tasks)
    # Sessions of dropped clients finish finalising; then the outbox drains to the sink.
    await asyncio.sleep(10)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(soak.hooks) < webhook_due(soak):
        await asyncio.sleep(1)
    pending = metric_total(soak.server, "stt_webhook_pending")
    soak.webhooks = soak.webhook_report(pending)
    soak.sink_server.close()
    soak.trickle_server.close()


def webhook_due(soak: Soak) -> float:
    return metric_total(soak.server, "stt_stream_events_total", type="transcript.final") + metric_total(
        soak.server, "stt_stream_events_total", type="session.closed"
    )


def report(soak: Soak) -> dict:
    server_started = metric_total(soak.server, "stt_stream_events_total", type="speech.started")
    server_finals = metric_total(soak.server, "stt_stream_events_total", type="transcript.final")
    samples = soak.samples
    warm = next((s for s in samples if s["t_s"] >= 60), samples[-1])  # the model's buffers are allocated by then
    latency = {
        f"{w * soak.args.window_s / 60:g}-{(w + 1) * soak.args.window_s / 60:g} min": {
            "finals": len(v), "p50": percentile(v, 50), "p95": percentile(v, 95),
        }
        for w, v in sorted(soak.latency.items())
    }
    return {
        "benchmark": "soak: real-time streams with faults, one gateway on loopback",
        "minutes": soak.args.minutes,
        "streams": soak.args.streams,
        "model": soak.args.model,
        "sessions": dict(soak.sessions),
        "utterances_started_client": soak.started_utterances,
        "finals_client": soak.finals,
        "lost_in_closed_sessions": soak.lost,
        "utterances_started_server": server_started,
        "finals_server": server_finals,
        "errors_by_code": dict(soak.errors),
        "refused_503": soak.refused,
        "latency_by_window": latency,
        "server": {
            "start": samples[0], "after 1 min": warm, "middle": samples[len(samples) // 2], "end": samples[-1],
            "max": {"rss_mb": max(s["rss_mb"] for s in samples), "fds": max(s["fds"] for s in samples)},
        },
        "samples": soak.samples,
        "faults": {k: dict(v) for k, v in soak.faults.items()},
        "webhooks": soak.webhooks,
    }


def print_table(r: dict) -> None:
    print(f"\n{r['minutes']} minutes, {r['streams']} real-time streams, {r['model']}: sessions {r['sessions']}")
    print(f"utterances started / finalised: client {r['utterances_started_client']} / {r['finals_client']} "
          f"(lost in closed sessions: {r['lost_in_closed_sessions']}); server {r['utterances_started_server']:.0f} / {r['finals_server']:.0f}")
    print(f"error events by code: {r['errors_by_code']}; refused (503): {r['refused_503']}")
    print("| window | finals | final latency p50 | p95 |\n|---|---|---|---|")
    for window, v in r["latency_by_window"].items():
        print(f"| {window} | {v['finals']} | {shown(v['p50'], ' s')} | {shown(v['p95'], ' s')} |")
    print("| server | t | RSS | open fds | streams |\n|---|---|---|---|---|")
    for when, s in r["server"].items():
        t = f"{s['t_s']:.0f} s" if "t_s" in s else "-"
        print(f"| {when} | {t} | {s['rss_mb']:.0f} MB | {s['fds']} | {s.get('streams', '-')} |")
    print(f"webhooks: {r['webhooks']}")
    print("| fault | outcomes |\n|---|---|")
    for fault, outcomes in sorted(r["faults"].items()):
        print(f"| {fault} | {', '.join(f'{k}: {v}' for k, v in outcomes.items())} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=8, help="real-time streams (tiny.en holds 12 on 2 cores)")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--audio-dir", type=Path, help="a folder with manifest.jsonl (default ../shared/audio, else tests/data)")
    parser.add_argument("--window-s", type=float, default=120.0, help="latency is reported per window of this length")
    parser.add_argument("--sample-s", type=float, default=30.0, help="how often the server's RSS and descriptors are read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args(argv)
    clips = load_corpus(args.audio_dir)
    sink_port, trickler_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        server = ServerProcess(args.model, [
            "--idle-timeout-s", "30", "--webhook-url", f"http://127.0.0.1:{sink_port}/hook",
            "--webhook-allow-hosts", f"127.0.0.1:{trickler_port}", "--data-dir", data_dir,
        ])
        try:
            soak = Soak(server, clips, args)
            soak.sink_port, soak.trickler_port = sink_port, trickler_port  # the receivers the server was told of
            asyncio.run(run(soak))
            result = report(soak)
        finally:
            server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Prometheus metrics (GET /metrics). Defined once per process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from gateway.core.events import ErrorEvent, Event
from gateway.inference.records import Decoding

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)

streams_active = Gauge("stt_streams_active", "Live streams open now, by front door", ["door"])
stream_latency = Histogram(
    "stt_stream_latency_seconds",
    "kind=final: a final's arrival after the audio where its speech ended arrived; "
    "kind=first_partial: an utterance's first partial after the audio where it began arrived",
    ["door", "kind"],
    buckets=LATENCY_BUCKETS,
)
stream_errors = Counter("stt_stream_errors_total", "Error events sent to stream clients, by code", ["door", "code"])
streams_total = Counter("stt_streams_total", "Live streams by outcome", ["outcome"])
webhook_pending = Gauge("stt_webhook_pending", "Webhook deliveries waiting in the outbox (the webhook backlog)")
webhook_dropped = Counter(
    "stt_webhook_dropped_total",
    "Webhook deliveries given up: outbox_full (not stored), invalid_url (cannot be called), given_up (too old)",
    ["reason"],
)
webhook_errors = Counter(
    "stt_webhook_errors_total",
    "Failures of the webhook machinery itself (enqueue: not stored, the stream went on; outbox: reading or updating it; delivery)",
    ["stage"],
)
subscribers_active = Gauge("stt_subscribers_active", "Clients following a session (WS /v0/sessions/{id}/events)")
audio_bytes = Counter("stt_stream_audio_bytes_total", "Audio bytes received on live streams")
events = Counter(
    "stt_stream_events_total",
    "Stream events by type; delivered=false: produced after the client left (finalised anyway)",
    ["type", "delivered"],
)
decode_seconds = Histogram("stt_decode_seconds", "Model time per decode", ["kind"], buckets=LATENCY_BUCKETS)
queue_seconds = Histogram("stt_queue_seconds", "Time a decode waited for a worker", ["kind"], buckets=LATENCY_BUCKETS)
decode_audio_seconds = Counter("stt_decoded_audio_seconds_total", "Audio seconds decoded", ["kind"])
fallbacks = Counter("stt_decode_fallbacks_total", "Decodes that needed more than one attempt", ["kind"])
batch_requests = Counter("stt_batch_requests_total", "Batch API requests by status", ["status"])


def observe_decode(kind: str, queued_s: float, decode_s: float, decoding: Decoding | None) -> None:
    """Engine observer: called from worker threads after every decode."""
    queue_seconds.labels(kind).observe(queued_s)
    decode_seconds.labels(kind).observe(decode_s)
    if decoding is not None:
        decode_audio_seconds.labels(kind).inc(decoding.duration)
        if decoding.attempts > 1:
            fallbacks.labels(kind).inc()


class StreamMetrics:
    """The runner's observer (``gateway.http.streaming.runner.RunnerObserver``) for one front door."""

    def __init__(self, door: str):
        self.door = door

    def audio_received(self, n_bytes: int) -> None:
        audio_bytes.inc(n_bytes)

    def event_sent(self, event: Event, delivered: bool) -> None:
        events.labels(event.type, str(delivered).lower()).inc()
        if isinstance(event, ErrorEvent):
            stream_errors.labels(self.door, event.code).inc()

    def latency(self, kind: str, seconds: float) -> None:
        stream_latency.labels(self.door, kind).observe(seconds)


class EngineCollector:
    """The engine's state at scrape time: queue depth by kind, busy workers,
    pressure, the finals' p95 wait. Follows the engine of the latest app."""

    def __init__(self) -> None:
        self.engine: Any = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.engine is None:
            return
        load = self.engine.load()
        pending = GaugeMetricFamily("stt_engine_pending", "Decodes waiting for a worker, by kind", labels=["kind"])
        pending.add_metric(["final"], load.pending_finals)
        pending.add_metric(["partial"], load.pending_partials)
        pending.add_metric(["batch"], load.pending_batch)
        yield pending
        yield GaugeMetricFamily("stt_engine_workers", "Decode workers", value=load.workers)
        yield GaugeMetricFamily("stt_engine_busy_workers", "Decode workers busy now", value=load.busy)
        yield GaugeMetricFamily(
            "stt_engine_pressure", "0..1: how hard finals compete for workers (1: new streams are refused)", value=load.pressure
        )
        yield GaugeMetricFamily(
            "stt_engine_final_wait_p95_seconds", "p95 of the time finals waited for a worker, recent window", value=load.final_wait_p95
        )


engine_collector = EngineCollector()
REGISTRY.register(engine_collector)

"""Prometheus metrics (GET /metrics). Defined once per process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from gateway.inference.records import Decoding

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)

streams_active = Gauge("stt_streams_active", "Live streams open now")
streams_total = Counter("stt_streams_total", "Live streams by outcome", ["outcome"])
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
    """The runner's observer (``gateway.frontdoors.runner.RunnerObserver``)."""

    def audio_received(self, n_bytes: int) -> None:
        audio_bytes.inc(n_bytes)

    def event_sent(self, event_type: str, delivered: bool) -> None:
        events.labels(event_type, str(delivered).lower()).inc()

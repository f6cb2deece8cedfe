"""The application: every route, assembled from the layers below.

Routes: the streaming front doors (``/v0/audio/stream``; each one a dialect
from ``gateway.frontdoors`` opened by ``streams.StreamDoors``), the batch
API (``batch``), ``/healthz``, ``/metrics`` and the browser demo.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import __version__
from gateway.config import ServerConfig
from gateway.core.options import SessionOptions
from gateway.core.settings import StreamSettings
from gateway.inference.engine import Engine
from gateway.inference.models import LoadSettings, ModelRegistry, all_languages

from . import observability as metrics
from .admission import StreamHub
from .auth import AuthMiddleware, HostCheck, Hosts, Keys, Origins, redact_secrets_in_logs
from .batch import install_batch_routes
from .demo import demo_directory, mount_demo
from .gates import Gates
from .sessions import SessionRegistry, install_session_routes
from .streaming.doors import StreamDoors, door_table
from .streaming.runner import StreamLimits
from .webhooks import WebhookOutbox, callable_url


def create_app(config: ServerConfig, registry: ModelRegistry | None = None, engine: Engine | None = None) -> FastAPI:
    registry = registry or ModelRegistry(
        config.model,
        LoadSettings(device=config.device, compute_type=config.compute_type, cpu_threads=config.cpu_threads, workers=config.workers),
    )
    owns_engine = engine is None
    engine = engine or Engine(registry, observer=metrics.observe_decode, background_workers=config.partial_workers or None)
    hub = StreamHub(engine, config.max_streams, config.admission)
    keys = Keys(config.api_keys, config.admin_keys)
    webhooks_on = bool(config.webhook_url or config.webhook_allow_hosts)
    if config.webhook_url:
        callable_url(config.webhook_url)  # WebhookURLError (a ValueError) at start-up, not at the first final
    outbox = WebhookOutbox(
        config.data_dir, config.webhook_secret, timeout_s=config.webhook_timeout_s,
        max_rows=config.webhook_outbox_max_rows, max_bytes=int(config.webhook_outbox_max_mb * 1e6),
    ) if webhooks_on else None
    sessions = SessionRegistry(config.session_retention_s, config.subscriber_backlog, outbox, config.webhook_url)
    if outbox is not None:
        metrics.webhook_pending.set_function(outbox.pending)
    doors = StreamDoors(
        engine,
        registry,
        hub,
        keys,
        defaults=SessionOptions(
            vad_aggressiveness=config.vad_aggressiveness,
            endpoint_ms=config.endpoint_ms,
            max_segment_s=config.max_segment_s,
            redact=config.redact,  # the floor: a client adds kinds, never removes one
        ),
        settings=StreamSettings(
            partial_interval_ms=config.partial_interval_ms,
            partial_window_s=config.partial_window_s,
            first_partial_ms=config.first_partial_ms,
            stable_lag_ms=config.stable_lag_ms,
            speculative_final=config.speculative_final,
            max_prompt_chars=config.max_prompt_chars,
        ),
        languages=frozenset(all_languages()),
        limits=StreamLimits(config.send_timeout_s, config.idle_timeout_s, config.max_session_s),
        origins=Origins(config.allowed_origins),
        sessions=sessions,
        opening_timeout_s=config.header_timeout_s,
        webhook_hosts=config.webhook_allow_hosts,
    )
    redact_secrets_in_logs()
    metrics.engine_collector.engine = engine

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        for name in (config.model, *config.preload):
            await loop.run_in_executor(None, engine.decoder, registry.resolve(name))
        if outbox is not None:
            outbox.start()  # delivers what a previous run left pending, too
        yield
        await hub.drain(config.drain_timeout_s)
        if outbox is not None:
            await outbox.stop()
        if owns_engine:
            await loop.run_in_executor(None, engine.close)

    app = FastAPI(
        title="stt-gateway",
        version=__version__,
        description="Streaming real-time transcription gateway (Whisper) with an OpenAI-compatible batch API.",
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.registry = registry
    app.state.engine = engine
    app.state.hub = hub
    app.state.keys = keys
    app.state.doors = doors
    app.state.outbox = outbox

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        load = engine.load()
        return {
            "status": "draining" if hub.draining else "ok",
            "version": __version__,
            "default_model": registry.default,
            "loaded_models": registry.loaded_ids(),
            "streams": len(hub.runners),
            "workers": load.workers,
            "busy_workers": load.busy,
            "pending": {"finals": load.pending_finals, "partials": load.pending_partials, "batch": load.pending_batch},
        }

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Whether a new stream would be taken now: a load balancer sends
        streams elsewhere while this says 503 (draining, or at capacity)."""
        refusal = hub.refusal()
        if refusal is None:
            return JSONResponse({"status": "ready", "streams": len(hub.runners)})
        reason, retry_after = refusal
        status = "draining" if hub.draining else "at_capacity"
        return JSONResponse(
            {"status": status, "reason": reason, "streams": len(hub.runners)},
            status_code=503, headers={"Retry-After": str(retry_after)},
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # The streaming front doors: a dialect and a path each.
    for door in door_table(config):
        app.add_api_websocket_route(door.path, doors.endpoint(door))
    # Following any live session: a snapshot, and its events for subscribers.
    install_session_routes(app, sessions, Gates(keys, doors.gates.origins), config.send_timeout_s)
    app.state.sessions = sessions

    install_batch_routes(app, engine, registry, config)
    # Added last, so it runs first: a request without a key is refused
    # before anything reads its body.
    app.add_middleware(AuthMiddleware, keys=keys, public_prefixes=("/demo/",))
    # Outermost: a request to a name this server does not have (DNS rebinding) goes no further.
    app.add_middleware(HostCheck, hosts=Hosts(config.allowed_hosts, config.host))
    app.state.demo_served = config.demo and mount_demo(app, demo_directory())
    return app

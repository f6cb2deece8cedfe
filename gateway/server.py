"""The HTTP/WebSocket server: a thin Starlette/FastAPI layer over the core.

Routes: the live stream (``/v0/audio/stream``), the batch API (see
``gateway.api``), ``/healthz``, ``/metrics`` and the browser demo. Stopping
on SIGINT/SIGTERM first finalises every open stream (their clients get the
last finals and ``session.closed``), then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from . import __version__, metrics
from .config import ServerConfig
from .engine import Engine
from .models import LoadSettings, ModelRegistry, all_languages
from .protocol import ProtocolError, SessionOptions, parse_options
from .session import StreamSession, StreamSettings
from .streaming import StreamRunner, refuse_config

log = logging.getLogger("gateway")

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
PUBLIC_PATHS = ("/healthz",)
SUBPROTOCOL_PREFIX = "bearer."


# -- authentication ----------------------------------------------------------
class Keys:
    """API keys, compared in constant time and never logged."""

    def __init__(self, keys: tuple[str, ...]):
        self._keys = [k.encode() for k in keys if k]

    @property
    def required(self) -> bool:
        return bool(self._keys)

    def valid(self, key: str | None) -> bool:
        if key is None:
            return False
        candidate = key.encode()
        # Compare against every key so timing does not reveal which matched.
        matches = [hmac.compare_digest(candidate, k) for k in self._keys]
        return any(matches)

    def from_headers(self, authorization: str | None, subprotocols: list[str]) -> str | None:
        if authorization and authorization.lower().startswith("bearer "):
            return authorization[7:].strip()
        for proto in subprotocols:
            if proto.startswith(SUBPROTOCOL_PREFIX):
                return proto[len(SUBPROTOCOL_PREFIX) :]
        return None


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {"error": {"message": "missing or invalid API key: send Authorization: Bearer <key>", "type": "invalid_request_error", "code": "invalid_api_key"}},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


class AuthMiddleware:
    """401 on every HTTP route but /healthz and the demo's static files."""

    def __init__(self, app: ASGIApp, keys: Keys, public_prefixes: tuple[str, ...]):
        self.app = app
        self.keys = keys
        self.public_prefixes = public_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys.required:
            path = scope["path"]
            public = path in PUBLIC_PATHS or path == "/" or path.startswith(self.public_prefixes)
            if not public:
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                if not self.keys.valid(self.keys.from_headers(headers.get("authorization"), [])):
                    await _unauthorized()(scope, receive, send)
                    return
        await self.app(scope, receive, send)


# -- streams and admission ---------------------------------------------------
@dataclass
class StreamHub:
    """The open streams: for admission, health and graceful shutdown."""

    engine: Engine
    max_streams: int = 0
    admission: bool = True
    runners: set = field(default_factory=set)
    draining: bool = False

    def refusal(self) -> tuple[str, int] | None:
        """Why a new stream must wait, and for how long (seconds), or None."""
        if self.draining:
            return "the server is shutting down", 5
        if self.max_streams and len(self.runners) >= self.max_streams:
            return f"the server is at capacity ({self.max_streams} streams)", 5
        if self.admission and self.runners:
            load = self.engine.load()
            # Finals of the open streams already need the workers: one more
            # stream would make them late.
            if load.pressure >= 1.0:
                return (
                    f"the server is at capacity ({len(self.runners)} streams; finals use "
                    f"{load.final_utilisation:.0%} of the decoders, p95 wait {load.final_wait_p95:.2f} s)"
                ), 10
        return None

    async def drain(self, timeout: float = 30.0) -> None:
        self.draining = True
        for runner in list(self.runners):
            runner.shutdown()
        deadline = asyncio.get_running_loop().time() + timeout
        while self.runners and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)


# -- the application ---------------------------------------------------------
def create_app(config: ServerConfig, registry: ModelRegistry | None = None, engine: Engine | None = None) -> FastAPI:
    registry = registry or ModelRegistry(
        config.model,
        LoadSettings(device=config.device, compute_type=config.compute_type, cpu_threads=config.cpu_threads, workers=config.workers),
    )
    owns_engine = engine is None
    engine = engine or Engine(registry, observer=metrics.observe_decode)
    hub = StreamHub(engine, config.max_streams, config.admission)
    keys = Keys(config.api_keys)
    languages = set(all_languages())
    defaults = SessionOptions(
        vad_aggressiveness=config.vad_aggressiveness,
        endpoint_ms=config.endpoint_ms,
        max_segment_s=config.max_segment_s,
    )
    settings = StreamSettings(
        partial_interval_ms=config.partial_interval_ms,
        speculative_final=config.speculative_final,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()
        for name in (config.model, *config.preload):
            await loop.run_in_executor(None, engine.decoder, registry.resolve(name))
        yield
        await hub.drain()
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

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
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

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics():
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/v0/audio/stream")
    async def stream(websocket: WebSocket):
        subprotocols = list(websocket.scope.get("subprotocols", []))
        if keys.required and not keys.valid(keys.from_headers(websocket.headers.get("authorization"), subprotocols)):
            metrics.streams_total.labels("unauthorized").inc()
            await websocket.send_denial_response(_unauthorized())
            return
        refusal = hub.refusal()
        if refusal is not None:
            reason, retry_after = refusal
            metrics.streams_total.labels("refused").inc()
            await websocket.send_denial_response(
                JSONResponse({"error": {"message": reason, "code": "at_capacity"}}, status_code=503, headers={"Retry-After": str(retry_after)})
            )
            return
        # Browsers must get one of their offered subprotocols back.
        chosen = next((p for p in subprotocols if not p.startswith(SUBPROTOCOL_PREFIX)), None)
        chosen = chosen or (subprotocols[0] if subprotocols else None)
        try:
            options = parse_options(dict(websocket.query_params), defaults, languages)
            session = StreamSession(options, registry, languages, settings)
        except ProtocolError as exc:
            metrics.streams_total.labels("invalid_config").inc()
            await refuse_config(websocket, exc, chosen)
            return
        await websocket.accept(subprotocol=chosen)
        runner = StreamRunner(websocket, session, engine, metrics)
        hub.runners.add(runner)
        engine.live_streams = len(hub.runners)
        metrics.streams_active.inc()
        log.info("stream %s opened: %s", session.session_id, options.to_dict() | {"prompt": bool(options.prompt)})
        try:
            await runner.run()
        finally:
            hub.runners.discard(runner)
            engine.live_streams = len(hub.runners)
            metrics.streams_active.dec()
            metrics.streams_total.labels("detached" if session.detached else "closed").inc()
            log.info("stream %s closed after %.1f s of audio", session.session_id, session.duration)

    from .api import install_batch_routes

    install_batch_routes(app, engine, registry, config)
    # Added last, so it runs first: a request without a key is refused
    # before anything reads its body.
    app.add_middleware(AuthMiddleware, keys=keys, public_prefixes=("/demo/",))

    if config.demo and DEMO_DIR.is_dir():
        from starlette.staticfiles import StaticFiles
        from starlette.responses import RedirectResponse

        app.mount("/demo", StaticFiles(directory=DEMO_DIR, html=True), name="demo")

        @app.get("/", include_in_schema=False)
        async def root():
            return RedirectResponse("/demo/")

    return app


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, without a false error.

    After a denial response (401, 503) it still takes the handshake for
    pending and logs "ASGI callable returned without completing handshake"
    at ERROR on every refused stream, which would page whoever alerts on
    errors whenever admission control works as meant (Kludex/uvicorn#3138,
    open). The client got its response; the handshake is over.
    """

    async def send(self, message) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True


class GatewayServer(uvicorn.Server):
    """uvicorn, except that a stop signal first finalises open streams."""

    def __init__(self, config: uvicorn.Config, hub: StreamHub):
        super().__init__(config)
        self.hub = hub
        self._draining = False

    def handle_exit(self, sig: int, frame) -> None:
        if self._draining or not self.started:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        log.info("signal %s: finalising %d open stream(s) before exit", signal.Signals(sig).name, len(self.hub.runners))
        loop = asyncio.get_event_loop()

        async def drain_then_exit():
            await self.hub.drain()
            super(GatewayServer, self).handle_exit(sig, frame)

        loop.call_soon_threadsafe(lambda: loop.create_task(drain_then_exit()))


def serve(config: ServerConfig) -> None:
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        ws=WebSocketProtocol,
        ws_max_size=4 * 1024 * 1024,
        timeout_graceful_shutdown=10,
    )
    server = GatewayServer(uv_config, app.state.hub)
    print(f"stt-gateway {__version__}\n{config.describe()}", flush=True)
    print(f"stream:  ws://{config.host}:{config.port}/v0/audio/stream", flush=True)
    print(f"batch:   http://{config.host}:{config.port}/v0/audio/transcriptions", flush=True)
    if config.demo:
        print(f"demo:    http://{config.host}:{config.port}/", flush=True)
    server.run()

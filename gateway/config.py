"""Server configuration: one typed object, from CLI flags and environment variables.

Every option ``--some-option`` can also be set as ``STT_GATEWAY_SOME_OPTION``;
a flag on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .core.options import MAX_PROMPT_CHARS, SessionOptions, flag_word, redact_kinds
from .core.settings import StreamSettings

ENV_PREFIX = "STT_GATEWAY_"


@dataclass(frozen=True)
class ServerConfig:
    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on"})
    port: int = field(default=8000, metadata={"help": "TCP port (0 picks a free one)"})
    model: str = field(
        # tiny.en, not base: on 2 cores base serves one live stream and misses
        # the single-stream latency target; tiny.en serves 14 (docs/performance.md).
        # base stays one request away (model=base).
        default="tiny.en",
        metadata={
            "help": "default model, served as whisper-1: a bundled model (tiny.en, base), "
            "a local CTranslate2 directory, or a faster-whisper model name (needs hub access)"
        },
    )
    preload: tuple[str, ...] = field(
        default=(),
        metadata={"help": "more models to load at start-up (comma-separated); others load on first use"},
    )
    workers: int = field(default=2, metadata={"help": "decodes run in parallel (CTranslate2 inter_threads)"})
    partial_workers: int = field(
        default=0,
        metadata={"help": "decodes partials (and uploads) may run at once while live streams are open; 0: one fewer than workers, so a final never waits behind them"},
    )
    cpu_threads: int = field(default=2, metadata={"help": "threads per decode (CTranslate2 intra_threads)"})
    compute_type: str = field(default="int8", metadata={"help": "CTranslate2 compute type (int8, int8_float32, float32, ...)"})
    device: str = field(default="cpu", metadata={"help": "cpu, cuda or auto"})
    # The stream defaults are the core's (SessionOptions, StreamSettings): one home each.
    vad_aggressiveness: int = field(default=SessionOptions.vad_aggressiveness, metadata={"help": "default webrtcvad mode, 0 (least) to 3 (most aggressive)"})
    endpoint_ms: int = field(default=SessionOptions.endpoint_ms, metadata={"help": "default trailing silence that ends an utterance"})
    max_segment_s: float = field(default=SessionOptions.max_segment_s, metadata={"help": "default longest utterance before a forced cut"})
    partial_interval_ms: int = field(default=StreamSettings.partial_interval_ms, metadata={"help": "new speech between partial decodes"})
    partial_window_s: float = field(
        default=StreamSettings.partial_window_s,
        metadata={"help": "least encoder window of a partial decode, in seconds (shorter audio is padded to it): smaller is cheaper"},
    )
    stable_lag_ms: int = field(
        default=StreamSettings.stable_lag_ms,
        metadata={"help": "a partial's word is stable (stable_text, OpenAI deltas) once a hypothesis over this much less audio had it too"},
    )
    first_partial_ms: int = field(
        default=StreamSettings.first_partial_ms,
        metadata={"help": "utterance audio (the VAD's pre-roll included) before its first partial decode"},
    )
    speculative_final: bool = field(default=True, metadata={"help": "start the final decode when a pause begins"})
    max_streams: int = field(
        default=64, metadata={"help": "most concurrent streams (503 beyond); load-based admission may refuse sooner (0: no cap)"}
    )
    max_connections: int = field(
        default=512, metadata={"help": "most concurrent HTTP and WebSocket connections (503 beyond; 0: no cap)"}
    )
    allowed_origins: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "web origins (scheme://host[:port]) whose pages may open streams besides the gateway's own, "
            "comma-separated; * for any. Clients that send no Origin are not browsers and always may"
        },
    )
    allowed_hosts: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "names the server answers to (the Host header; 421 otherwise), comma-separated; * for any. "
            "Default: on a loopback bind localhost, 127.0.0.1, ::1 and the bound address (DNS rebinding), elsewhere any"
        },
    )
    header_timeout_s: float = field(
        default=10.0,
        metadata={"help": "a connection that has not sent a complete request line and headers (or upgrade) by then is closed"},
    )
    drain_timeout_s: float = field(
        default=20.0,
        metadata={"help": "on SIGTERM/SIGINT, how long open streams get to finalise before the server exits anyway"},
    )
    admission: bool = field(
        default=True, metadata={"help": "refuse new streams (503) while the finals of open ones are falling behind"}
    )
    send_timeout_s: float = field(
        default=5.0,
        metadata={"help": "how long a send to a stream's client may wait; a client that does not read is then closed (1008 slow_consumer)"},
    )
    idle_timeout_s: float = field(
        default=120.0,
        metadata={"help": "a stream that has sent no speech (no audio, or only silence) for this long is finalised and closed (0: never)"},
    )
    max_session_s: float = field(
        default=14400.0, metadata={"help": "longest a stream may stay open; then it is finalised and closed (0: no limit)"}
    )
    twilio_auth_token: str = field(
        default="",
        metadata={"help": "Twilio auth token: check X-Twilio-Signature on /v0/telephony/twilio (403 when bad); needs --public-url", "secret": True},
    )
    public_url: str = field(
        default="", metadata={"help": "the gateway's public base URL as Twilio reaches it (e.g. wss://stt.example.com): what Twilio signs"}
    )
    webhook_url: str = field(default="", metadata={"help": "POST every final and each session's end here (signed, at least once)"})
    webhook_secret: str = field(
        default="", metadata={"help": "signs webhooks: STT-Signature: t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<body>'>", "secret": True}
    )
    webhook_allow_hosts: tuple[str, ...] = field(
        default=(),
        metadata={"help": "host[:port]s a session's own webhook_url may name (a bare host: its ports 80 and 443; none: sessions cannot name one)"},
    )
    webhook_timeout_s: float = field(
        default=10.0, metadata={"help": "the longest one webhook delivery may take in all (connect, send, the answer's status); then it is retried"}
    )
    webhook_outbox_max_rows: int = field(
        default=100_000, metadata={"help": "most webhook deliveries kept waiting in the outbox; past it new ones are dropped (counted, logged)"}
    )
    webhook_outbox_max_mb: float = field(
        default=256.0, metadata={"help": "most megabytes of webhook bodies kept waiting in the outbox; past it new ones are dropped"}
    )
    data_dir: str = field(
        default="stt-gateway-data", metadata={"help": "where the webhook outbox (SQLite) lives, created when webhooks are on"}
    )
    session_retention_s: float = field(
        default=3600.0, metadata={"help": "how long an ended session's snapshot (GET /v0/sessions/{id}) stays available"}
    )
    subscriber_backlog: int = field(
        default=1000,
        metadata={"help": "events a session's subscriber may fall behind by before it is dropped (slow_subscriber); the call never waits"},
    )
    api_keys: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "API keys (comma-separated in the environment); each sees only its own sessions. "
            "None (and no admin keys): no authentication, allowed on a loopback bind only unless --allow-anonymous",
            "secret": True,
        },
    )
    admin_keys: tuple[str, ...] = field(
        default=(),
        metadata={"help": "keys that see every session (a supervisor's console), and may do all an API key may", "secret": True},
    )
    allow_anonymous: bool = field(
        default=False,
        metadata={"help": "start without keys on an address other than loopback: anyone who can reach the port may stream, upload, list and follow every session"},
    )
    max_upload_mb: float = field(default=25.0, metadata={"help": "largest accepted upload for the batch API, in megabytes"})
    max_uploads: int = field(
        default=4,
        metadata={"help": "uploads transcribed at once (each holds its file and a few chunks of audio); more get 503 with Retry-After (0: no cap)"},
    )
    max_audio_s: float = field(
        default=7200.0,
        metadata={"help": "longest upload, in seconds of decoded audio: longer files are refused (413) before they are decoded"},
    )
    max_prompt_chars: int = field(
        default=MAX_PROMPT_CHARS, metadata={"help": "longest prompt a stream or an upload may give (Whisper reads its last 223 tokens)"}
    )
    redact: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "kinds redacted in every stream and upload, a floor clients may add to and never lower "
            "(comma-separated: pci, ssn, phone, email, numbers)"
        },
    )
    allocator: str = field(
        default="jemalloc",
        metadata={"help": "jemalloc (preloaded when the system has libjemalloc2: glibc malloc fragments under load and memory grows) or system"},
    )
    demo: bool = field(default=True, metadata={"help": "serve the browser demo at /"})
    log_level: str = field(default="info", metadata={"help": "debug, info, warning or error"})

    def describe(self) -> str:
        rows = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = f"<{len(value)} key(s)>" if isinstance(value, tuple) else "<set>"
            elif isinstance(value, tuple):
                value = ",".join(value) or "-"
            rows.append(f"  {f.name:20s} {value}")
        return "\n".join(rows)


def flag_name(name: str) -> str:
    return {"api_keys": "--api-key", "admin_keys": "--admin-key"}.get(name, "--" + name.replace("_", "-"))


def _parse_bool(text: str) -> bool:
    meaning = flag_word(text)
    if meaning is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return meaning


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field; defaults come from the environment, then the dataclass."""
    for f in fields(ServerConfig):
        env = ENV_PREFIX + f.name.upper()
        default = f.default
        kind = type(default)
        help_text = f"{f.metadata.get('help', '')} [env {env}; default: {shown_default(default)}]"
        if kind is tuple:
            parser.add_argument(
                flag_name(f.name), dest=f.name, action="append", default=None, metavar="VALUE",
                help=help_text + " (repeatable)",
            )
        elif kind is bool:
            parser.add_argument(
                flag_name(f.name), dest=f.name, type=_parse_bool, default=None, metavar="true|false", help=help_text
            )
        else:
            parser.add_argument(flag_name(f.name), dest=f.name, type=kind, default=None, help=help_text)


def shown_default(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def from_namespace(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServerConfig:
    env: Mapping[str, str] = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(ServerConfig):
        given: Any = getattr(args, f.name, None)
        kind: Any = type(f.default)
        if given is None:
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            try:
                given = _parse_bool(raw) if kind is bool else (raw.split(",") if kind is tuple else kind(raw))
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise SystemExit(f"environment variable {ENV_PREFIX + f.name.upper()}: {exc}") from None
        if kind is tuple:
            items = given if isinstance(given, list) else [given]
            given = tuple(part.strip() for item in items for part in item.split(",") if part.strip())
        values[f.name] = given
    if "redact" in values:
        try:
            values["redact"] = redact_kinds(list(values["redact"]))
        except ValueError as exc:
            raise SystemExit(f"--redact: {exc}") from None
    return ServerConfig(**values)

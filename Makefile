# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install, start the server on the bundled default model
#   make test   create .venv (and the SDK and framework virtualenvs), install, run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# The AiBrary SDK pins openai<2, so its check (tests/e2e/test_aibrary.py) runs in a
# virtualenv of its own; openai 1.109.1 is the newest 1.x.
SDK_VENV    = .venv-aibrary
SDK_STAMP   = $(SDK_VENV)/.installed
AIBRARY_PINS = aibrary==0.0.3 openai==1.109.1
# The voice-agent frameworks (tests/e2e/test_frameworks.py) run as their users
# run them, in a virtualenv of their own: their pins (openai, aiohttp,
# protobuf, opentelemetry, numba) are theirs, not the gateway's.
AGENTS_VENV  = .venv-agents
AGENTS_STAMP = $(AGENTS_VENV)/.installed
AGENTS_PINS  = pipecat-ai[deepgram,openai,assemblyai]==1.14.0 livekit-agents==1.8.9 \
               livekit-plugins-deepgram==1.8.9 livekit-plugins-openai==1.8.9 livekit-plugins-assemblyai==1.8.9
# deploy-check renders deploy/kubernetes with kubectl's kustomize and checks
# the result against these Kubernetes versions' API schemas.
KUBECTL      ?= kubectl
K8S_VERSIONS ?= 1.32.0 1.37.0
DEPLOY_OUT    = build/deploy-check

.PHONY: install run test test-fast check deploy-check cluster wheel bench bench-batch bench-doors bench-frameworks bench-calls bench-cluster bench-captions soak clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench,dev]'
	# The speaker encoder's weights ship in resemblyzer's wheel; its code (and torch) is never used.
	$(BIN)/python -m pip install --quiet --no-deps resemblyzer==0.1.4
	touch $(STAMP)

$(SDK_STAMP): Makefile constraints-aibrary.txt
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --quiet -c constraints-aibrary.txt $(AIBRARY_PINS)
	touch $(SDK_STAMP)

$(AGENTS_STAMP): Makefile constraints-agents.txt
	$(PYTHON) -m venv $(AGENTS_VENV)
	$(AGENTS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AGENTS_VENV)/bin/python -m pip install --quiet -c constraints-agents.txt $(AGENTS_PINS)
	touch $(AGENTS_STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/stt-gateway serve $(ARGS)

# N replicas behind HAProxy (deploy/haproxy.cfg) on this machine: the balancer
# on port 8000, replicas on 8001..; ARGS go to every replica's serve. Needs
# Debian's haproxy. Ctrl-C drains the replicas.
N ?= 3
cluster: $(STAMP)
	$(BIN)/python deploy/cluster.py --replicas $(N) --port 8000 -- $(ARGS)

test: $(STAMP) $(SDK_STAMP) $(AGENTS_STAMP)
	$(BIN)/python -m pytest $(ARGS)

# The model-free unit tier (tests/unit): the core, the VAD, audio, formats,
# the dialects byte by byte, the engine's scheduling; seconds, no server.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit -m "not e2e" $(ARGS)

# Lint, types (strict where fully annotated), the import layers (pyproject.toml), the
# container image and Kubernetes manifests (deploy-check), and the docs site (docs).
check: $(STAMP) deploy-check docs
	$(BIN)/ruff check gateway vad speakers redaction tests bench deploy docs
	$(BIN)/mypy
	$(BIN)/lint-imports

# The docs site (mkdocs.yml, docs/) into build/site. --strict fails on a broken
# link or anchor; docs/hooks.py renders the benchmark tables from bench/results.
.PHONY: docs
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

# The Dockerfile and deploy/kubernetes, checked without a Docker engine or a
# cluster: hadolint, then the kustomization rendered and validated strictly
# (unknown fields fail), and the optional pressure autoscaler beside it.
deploy-check: $(STAMP)
	$(BIN)/hadolint Dockerfile
	@command -v $(KUBECTL) >/dev/null 2>&1 || { \
		echo "deploy-check: '$(KUBECTL)' not found; it renders deploy/kubernetes (Debian: apt install kubernetes-client)" >&2; \
		exit 1; }
	mkdir -p $(DEPLOY_OUT)
	$(KUBECTL) kustomize deploy/kubernetes > $(DEPLOY_OUT)/rendered.yaml
	for version in $(K8S_VERSIONS); do \
		$(BIN)/kubernetes-validate --strict --quiet -k $$version \
			$(DEPLOY_OUT)/rendered.yaml deploy/kubernetes/optional/hpa-pressure.yaml || exit 1; \
	done

# The wheel a user installs, demo page included (tests/e2e/test_wheel.py checks it).
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

bench: $(STAMP)
	$(BIN)/python -m bench.streaming $(ARGS)

# python -m bench.soak: streams at capacity with faults; bench/results/soak.json
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(ARGS)

# python -m bench.frameworks: pipecat's and LiveKit's STT services; bench/results/frameworks.json
bench-frameworks: $(STAMP) $(AGENTS_STAMP)
	$(BIN)/python -m bench.frameworks $(ARGS)

# python -m bench.doors: each front door beside the native one; bench/results/doors.json
bench-doors: $(STAMP)
	$(BIN)/python -m bench.doors $(ARGS)

# python -m bench.calls: two-party 8 kHz calls against mono streams; bench/results/calls.json
bench-calls: $(STAMP)
	$(BIN)/python -m bench.calls $(ARGS)

# python -m bench.cluster: 1 and 2 replicas behind the balancer; bench/results/cluster.json
bench-cluster: $(STAMP)
	$(BIN)/python -m bench.cluster $(ARGS)

bench-batch: $(STAMP)
	$(BIN)/python -m bench.batch --repeats 2 $(ARGS)

# python -m bench.captions: live captions as a viewer sees them, 1 to 16 streams; bench/results/captions.json
bench-captions: $(STAMP)
	$(BIN)/python -m bench.captions $(ARGS)

clean:
	rm -rf $(VENV) $(SDK_VENV) $(AGENTS_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

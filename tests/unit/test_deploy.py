"""The container image and the Kubernetes manifests agree with the server.

No Docker engine and no cluster: the Dockerfile is read as text, its build
context worked out from .dockerignore the way Docker does, and
deploy/kubernetes rendered with ``kubectl kustomize`` (those tests skip
without kubectl; ``make deploy-check`` fails instead). What is checked is
what would break a deployment silently: a setting name with a typo, a
grace period shorter than the drain, a probe on the wrong port, a selector
that matches no pod, a COPY of a file the build context leaves out.
"""

from __future__ import annotations

import argparse
import ast
import http.server
import json
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields
from importlib.metadata import distribution, packages_distributions
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gateway.config import ENV_PREFIX, ServerConfig, from_namespace
from tests.clips import ROOT

KUSTOMIZATION = ROOT / "deploy" / "kubernetes"
SETTINGS = {ENV_PREFIX + f.name.upper(): f for f in fields(ServerConfig)}
# The image's variables that are not the gateway's settings.
IMAGE_ONLY_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK", "PIP_ROOT_USER_ACTION", "PYTHONUNBUFFERED"}


# The Dockerfile, as Docker reads it


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def read_dockerfile(path: Path = ROOT / "Dockerfile") -> list[list[Instruction]]:
    """The instructions, stage by stage (a stage starts at each FROM)."""
    stages: list[list[Instruction]] = []
    pending = ""
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue  # comments, also between the lines of one instruction
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        keyword, _, arguments = (pending + text).partition(" ")
        pending = ""
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def runtime_stage() -> list[Instruction]:
    return read_dockerfile()[-1]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    [found] = [i for i in stage if i.keyword == keyword]
    return found


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in runtime_stage():
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.arguments):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def copies_from_context() -> Iterator[list[str]]:
    """The sources of every COPY/ADD that reads the build context (not --from a stage)."""
    for stage in read_dockerfile():
        for instruction in stage:
            if instruction.keyword in ("COPY", "ADD"):
                words = shlex.split(instruction.arguments)
                if any(w.startswith("--from=") for w in words):
                    continue
                paths = [w for w in words if not w.startswith("--")]
                yield paths[:-1]


# The build context, as .dockerignore shapes it (moby/patternmatcher: the last
# pattern that matches a path or one of its parent folders decides)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(re-included, pattern) for each line of a .dockerignore."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        included = line.startswith("!")
        pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((included, _pattern_regex(pattern)))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    sent = True
    for included, pattern in rules:
        if any(pattern.fullmatch(c) for c in candidates):
            sent = included
    return sent


@pytest.fixture(scope="module")
def context_rules() -> list[tuple[bool, re.Pattern[str]]]:
    return ignore_rules((ROOT / ".dockerignore").read_text())


def test_the_ignore_rules_read_as_docker_reads_them():
    rules = ignore_rules("*\n!gateway/\n**/__pycache__\n# a comment\n!keep/**/*.txt\n")
    assert not in_context("README.md", rules)
    assert in_context("gateway/core/session.py", rules)
    assert not in_context("gateway/core/__pycache__/session.cpython-311.pyc", rules)
    assert not in_context("keep/a.bin", rules)
    assert in_context("keep/a/b/c.txt", rules)
    assert in_context("keep/c.txt", rules)


def test_every_copy_source_is_in_the_build_context(context_rules):
    for sources in copies_from_context():
        for source in sources:
            matches = sorted(ROOT.glob(source.rstrip("/")))
            assert matches, f"COPY {source}: no such path in the repository"
            for match in matches:
                files = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file()]
                shipped = [f for f in files if "__pycache__" not in f.parts]
                assert shipped, f"COPY {source}: nothing to copy"
                for f in shipped:
                    relative = f.relative_to(ROOT).as_posix()
                    assert in_context(relative, context_rules), f"COPY {source}: .dockerignore leaves out {relative}"


def read_pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11 reads TOML")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_wheel_is_built_from_what_the_builder_copies():
    """A package or readme added to pyproject.toml must be copied too, or the image's wheel lacks it."""
    project = read_pyproject()
    copied = {source.rstrip("/") for sources in copies_from_context() for source in sources}
    renamed = project["tool"]["setuptools"].get("package-dir", {})
    for package in project["tool"]["setuptools"]["packages"]:
        top = package.split(".")[0]
        folder = renamed.get(package, top).split("/")[0]
        assert folder in copied, f"package {package} lives in {folder}/, which the Dockerfile does not copy"
    assert project["project"]["readme"] in copied
    assert {"pyproject.toml", "constraints.txt"} <= copied


def dependency_closure(requirements: list[str]) -> set[str]:
    """The distributions `pip install` brings for these requirements (no extras), as installed here."""
    found: set[str] = set()
    todo = list(requirements)
    while todo:
        requirement = Requirement(todo.pop())
        name = canonicalize_name(requirement.name)
        if name in found or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        found.add(name)
        todo += distribution(name).requires or []
    return found


def imported_at_start(folder: Path) -> Iterator[tuple[str, str]]:
    """(top-level module, file) for every import that runs when a module loads:
    not those inside functions (optional, e.g. jiwer for the benchmarks) or
    under ``if TYPE_CHECKING``."""
    for path in sorted(folder.rglob("*.py")):
        body = list(ast.parse(path.read_text()).body)
        while body:
            node = body.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                yield from ((alias.name.split(".")[0], path.relative_to(ROOT).as_posix()) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.module.split(".")[0], path.relative_to(ROOT).as_posix()
            else:
                body += ast.iter_child_nodes(node)


def test_the_image_installs_every_module_the_server_imports():
    """The image has the wheel's declared dependencies and nothing else (no test extra)."""
    closure = dependency_closure(read_pyproject()["project"]["dependencies"])
    providers = packages_distributions()
    missing = set()
    for folder in ("gateway", "vad", "speakers", "redaction"):
        for module, where in imported_at_start(ROOT / folder):
            if module in sys.stdlib_module_names or module in ("gateway", "vad", "speakers", "redaction"):
                continue
            if not {canonicalize_name(d) for d in providers.get(module, [])} & closure:
                missing.add(f"{module} ({where})")
    assert not missing, f"imported but not a runtime dependency in pyproject.toml: {sorted(missing)}"


@pytest.mark.parametrize(
    "path",
    [".git/HEAD", ".venv/bin/python", ".venv-aibrary/bin/python", "build/lib/gateway/cli.py", "dist/stt_gateway-0.1.0-py3-none-any.whl",
     "stt_gateway.egg-info/PKG-INFO", "tests/artifacts/run.log", "tests/data/manifest.jsonl", "bench/results/soak.json",
     ".pytest_cache/README.md", ".hypothesis/examples/x", ".mypy_cache/3.10/x.json", "gateway/__pycache__/cli.cpython-311.pyc"],
)
def test_the_build_context_leaves_out_local_state(path, context_rules):
    assert not in_context(path, context_rules)


def test_the_entrypoint_is_the_installed_command():
    assert "stt-gateway" in read_pyproject()["project"]["scripts"]


def test_the_image_runs_as_a_non_root_user():
    user = only(runtime_stage(), "USER").arguments
    uid = user.split(":")[0]
    # Numeric, so that Kubernetes' runAsNonRoot can check it without /etc/passwd.
    assert uid.isdigit() and int(uid) != 0, user


def test_the_image_serves_on_its_settings():
    stage = runtime_stage()
    env = image_env()
    unknown = sorted(set(env) - set(SETTINGS) - IMAGE_ONLY_ENV)
    assert not unknown, f"ENV names no setting of ServerConfig: {unknown}"
    config = settings_from(env)
    assert config.host == "0.0.0.0"
    assert only(stage, "EXPOSE").arguments == str(config.port)
    assert exec_form(only(stage, "ENTRYPOINT").arguments) == ["stt-gateway", "serve"]
    assert only(stage, "STOPSIGNAL").arguments == "SIGTERM"  # what the server drains on


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("status, healthy", [(200, True), (500, False)])
def test_the_healthcheck_asks_healthz_on_the_configured_port(status, healthy):
    arguments = only(runtime_stage(), "HEALTHCHECK").arguments
    command = exec_form(arguments.split(" CMD ", 1)[1])
    assert command[0] == "python"
    handler = type("Health", (_Health,), {"status": status, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"STT_GATEWAY_PORT": str(server.server_address[1])}
        result = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert handler.paths == ["/healthz"]
    assert (result.returncode == 0) == healthy, result.stderr


# The settings a pod gets


def settings_from(env: dict[str, str]) -> ServerConfig:
    """The server's configuration from these variables alone, as `serve` reads them."""
    return from_namespace(argparse.Namespace(), environ={k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})


def unknown_settings(names: list[str]) -> list[str]:
    return sorted(n for n in names if n not in SETTINGS)


def test_a_misspelt_setting_is_caught():
    assert unknown_settings(["STT_GATEWAY_MAX_STREAMS", "STT_GATEWAY_MAX_STREAM", "STT_GATEWY_PORT"]) == [
        "STT_GATEWAY_MAX_STREAM", "STT_GATEWY_PORT",
    ]


# The rendered manifests


@dataclass(frozen=True)
class Rendered:
    objects: list[dict[str, Any]]

    def one(self, kind: str) -> dict[str, Any]:
        [found] = [o for o in self.objects if o["kind"] == kind]
        return found

    def named(self, kind: str, name: str) -> dict[str, Any]:
        [found] = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        return found


def render(folder: Path) -> Rendered:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: it renders deploy/kubernetes (make deploy-check requires it)")
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return Rendered([o for o in yaml.safe_load_all(result.stdout) if o])


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    return render(KUSTOMIZATION)


@pytest.fixture(scope="module")
def pod(rendered) -> dict[str, Any]:
    return rendered.one("Deployment")["spec"]["template"]


@pytest.fixture(scope="module")
def container(pod) -> dict[str, Any]:
    [found] = pod["spec"]["containers"]
    return found


def container_env(rendered: Rendered, container: dict[str, Any]) -> dict[str, str]:
    """The variables the manifests give the container (the image's own come first)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= rendered.named("ConfigMap", source["configMapRef"]["name"])["data"]
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", "")
    return env


def port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    [found] = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return found


def test_every_variable_in_the_manifests_is_a_setting(rendered, container):
    env = container_env(rendered, container)
    assert not unknown_settings(list(env)), f"not settings of ServerConfig: {unknown_settings(list(env))}"
    settings_from(image_env() | env)  # and each value parses as the setting's type


def test_no_secret_setting_sits_in_plain_configuration(rendered, container):
    env = container_env(rendered, container)
    secret = sorted(name for name in env if SETTINGS[name].metadata.get("secret"))
    assert not secret, f"{secret} belong in the Secret, not the ConfigMap"


def test_the_probes_ask_the_server_on_its_port(rendered, container):
    config = settings_from(image_env() | container_env(rendered, container))
    probes = {kind: container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe", "startupProbe")}
    # /readyz says 503 at capacity and while draining: the pod leaves the
    # Service. /healthz stays 200 then, so the kubelet does not restart it.
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert port_number(container, probe["port"]) == config.port
    startup = container["startupProbe"]
    allowance = startup.get("initialDelaySeconds", 0) + startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    assert allowance >= 30, "the default model takes seconds to load, more with --preload"


def test_the_grace_period_covers_the_drain(rendered, pod, container):
    from gateway.http.serve import uvicorn_config

    config = settings_from(image_env() | container_env(rendered, container))
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    shutdown_after_drain = uvicorn_config(None, config).timeout_graceful_shutdown
    needed = float(pre_stop[1]) + config.drain_timeout_s + shutdown_after_drain
    assert pod["spec"]["terminationGracePeriodSeconds"] > needed


def test_the_pod_is_locked_down_and_has_somewhere_to_write(rendered, pod, container):
    config = settings_from(image_env() | container_env(rendered, container))
    image_uid = int(only(runtime_stage(), "USER").arguments.split(":")[0])
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security.get("runAsUser", image_uid) == image_uid
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    own = container["securityContext"]
    assert own["readOnlyRootFilesystem"] is True
    assert own["allowPrivilegeEscalation"] is False
    assert own["capabilities"]["drop"] == ["ALL"]
    # With the root filesystem read-only, the data dir and /tmp (spooled uploads) must be volumes.
    mounted = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert {config.data_dir, "/tmp"} <= mounted


def test_resources_leave_cpu_unthrottled(container):
    resources = container["resources"]
    cpu_limit = resources.get("limits", {}).get("cpu")
    assert cpu_limit in (None, resources["requests"]["cpu"])
    assert "memory" in resources["limits"] and "memory" in resources["requests"]


def test_the_selectors_match_the_pods(rendered, pod):
    labels = pod["metadata"]["labels"]
    deployment = rendered.one("Deployment")
    for selector in (deployment["spec"]["selector"]["matchLabels"], rendered.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    service = rendered.one("Service")["spec"]
    assert service["selector"].items() <= labels.items()
    [container] = pod["spec"]["containers"]
    for port in service["ports"]:
        assert port_number(container, port["targetPort"]) == settings_from(image_env()).port


def test_the_autoscaler_scales_the_deployment(rendered):
    target = rendered.one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    deployment = rendered.one("Deployment")
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", deployment["metadata"]["name"])
    # The autoscaler owns the count: a fixed one would be reset on every apply.
    assert "replicas" not in deployment["spec"]


def test_the_pressure_autoscaler_differs_only_in_its_metric(rendered):
    from gateway.http.observability import EngineCollector
    from gateway.inference.engine import EngineLoad

    pressure = yaml.safe_load((KUSTOMIZATION / "optional" / "hpa-pressure.yaml").read_text())
    default = rendered.one("HorizontalPodAutoscaler")
    assert pressure["metadata"] == default["metadata"]
    assert {k: v for k, v in pressure["spec"].items() if k != "metrics"} == {k: v for k, v in default["spec"].items() if k != "metrics"}
    [metric] = pressure["spec"]["metrics"]
    collector = EngineCollector()
    collector.engine = type("Engine", (), {"load": lambda self: EngineLoad(2, 0, 0, 0, 0, 0.0, 0.0, 0.0)})()
    assert metric["pods"]["metric"]["name"] in {family.name for family in collector.collect()}


def test_prometheus_scrapes_the_metrics_port(rendered, pod, container):
    annotations = pod["metadata"]["annotations"]
    config = settings_from(image_env() | container_env(rendered, container))
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == config.port


def test_the_image_is_the_one_kustomize_replaces(rendered, container):
    kustomization = yaml.safe_load((KUSTOMIZATION / "kustomization.yaml").read_text())
    [image] = kustomization["images"]
    assert container["image"] == f"{image['newName']}:{image['newTag']}"

"""The wheel a user installs ships everything, the demo page included, and an
installed (not editable) copy serves it; without it, nothing claims it does."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from gateway.launch import wait_until_serving
from tests.clips import ROOT

DEMO_FILES = sorted(p.name for p in (ROOT / "demo").iterdir() if p.suffix in (".html", ".js", ".css"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )
    [built] = dist.glob("stt_gateway-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed into a folder of its own (its dependencies are this venv's)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    return target


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> str:
    """An interpreter that sees this venv's packages but not its editable
    install of the gateway (whose import hook would find this checkout)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    # A plain path in a .pth file: that folder's own .pth files (the editable hook) are not run.
    Path(site, "dependencies.pth").write_text("\n".join(ours) + "\n")
    return str(venv / "bin" / "python")


def test_the_wheel_ships_every_module_and_the_demo(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / "gateway").rglob("*.py")} | {
        str(p.relative_to(ROOT)) for folder in ("vad", "speakers", "redaction") for p in (ROOT / folder).glob("*.py")
    }
    assert sources <= names, sorted(sources - names)
    assert DEMO_FILES and {f"gateway/demo/{name}" for name in DEMO_FILES} <= names


def serve(python: str, site: Path, cwd: Path, command: list[str] | None = None) -> tuple[str, str]:
    """Start ``python -m gateway serve`` (or ``python <command> serve``) from ``site``;
    returns (its start-up output, GET / through redirects)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.Popen(
        [python, *(command or ["-m", "gateway"]), "serve", "--model", "tiny.en", "--port", str(port), "--workers", "1"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_until_serving(proc, port)
        page = httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=True)
        body = f"{page.status_code} {page.text}"
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    return output, body


def test_an_installed_copy_serves_the_demo(python, installed, tmp_path):
    where = subprocess.run(
        [python, "-c", "import gateway.http.demo as d; print(d.demo_directory())"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed)}, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert where == str(installed / "gateway" / "demo")  # the installed copy, not this checkout
    output, page = serve(python, installed, tmp_path)
    assert "demo:    http://" in output
    assert page.startswith("200 ") and "<html" in page.lower()


def test_without_the_demo_the_server_says_so_and_serves_none(python, installed, tmp_path):
    bare = tmp_path / "site"
    shutil.copytree(installed, bare, ignore=shutil.ignore_patterns("demo"))
    output, page = serve(python, bare, tmp_path)
    assert "demo:" not in output and "not installed" in output
    assert page.startswith("404 ")


def test_the_installed_server_runs_its_own_code_from_a_folder_holding_a_decoy_gateway(python, installed, tmp_path):
    """Issue 19: the jemalloc re-exec ran ``python -m gateway``, which puts the
    working directory first on sys.path: a ``gateway/`` folder there ran instead."""
    from gateway.http.allocator import find_jemalloc

    if find_jemalloc() is None:
        pytest.skip("no libjemalloc2: serve does not re-execute itself")
    decoy = tmp_path / "work"
    (decoy / "gateway").mkdir(parents=True)
    (decoy / "gateway" / "__init__.py").write_text("raise SystemExit('DECOY: the gateway/ of the working directory ran')\n")
    (decoy / "gateway" / "__main__.py").write_text("raise SystemExit('DECOY: the gateway/ of the working directory ran')\n")
    bin_dir = tmp_path / "bin"  # what pip's console script is: sys.path[0] is its own folder
    bin_dir.mkdir()
    (bin_dir / "stt-gateway").write_text("import sys\nfrom gateway.cli import main\nsys.exit(main())\n")
    output, page = serve(python, installed, decoy, command=[str(bin_dir / "stt-gateway")])
    assert "DECOY" not in output and "allocator: jemalloc" in output, output
    assert page.startswith("200 ") and "<html" in page.lower()

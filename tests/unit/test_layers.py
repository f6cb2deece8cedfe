"""The layers hold: an import that runs against them fails this test.

The rules live in pyproject.toml ([tool.importlinter]): transports -> core ->
engine, the core sans-I/O (no web framework, no event loop, no json), and
``vad``, ``speakers`` and ``redaction`` free of ``gateway``. ``lint-imports`` checks them; the second test
shows that it catches a breach.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.clips import ROOT

LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_layers_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_an_import_against_the_layers_is_caught(tmp_path):
    for name in ("gateway", "vad", "speakers", "redaction"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "gateway" / "core" / "events.py", "a") as f:
        f.write("\nimport json  # noqa\nfrom gateway.http import errors  # noqa\n")
    with open(tmp_path / "vad" / "detector.py", "a") as f:
        f.write("\nimport gateway.audio  # noqa\n")
    with open(tmp_path / "speakers" / "features.py", "a") as f:
        f.write("\nimport gateway.audio  # noqa\n")
    with open(tmp_path / "redaction" / "spoken.py", "a") as f:
        f.write("\nimport gateway.core  # noqa\n")
    with open(tmp_path / "gateway" / "frontdoors" / "wire.py", "a") as f:
        f.write("\nimport socket  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "0 kept, 4 broken" in result.stdout, result.stdout
    assert "gateway.frontdoors.wire -> socket" in result.stdout
    assert "gateway.core.events -> gateway.http.errors" in result.stdout
    assert "speakers.features -> gateway.audio" in result.stdout
    assert "redaction.spoken -> gateway.core" in result.stdout

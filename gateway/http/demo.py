"""The browser demo: the repository's ``demo/`` folder, shipped in the wheel as
the package ``gateway.demo`` and found through package resources, so that an
editable checkout, an installed wheel and a container image serve the same page."""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

log = logging.getLogger("gateway")

PACKAGE = "gateway.demo"


def demo_directory() -> Path | None:
    """Where the demo's files are, or None when this installation has none."""
    try:
        root = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        return None
    if not isinstance(root, Path) or not (root / "index.html").is_file():
        return None  # not on a file system (a zipped install): not served
    return root


def mount_demo(app: FastAPI, directory: Path | None) -> bool:
    """Serve the demo at ``/demo/`` and send ``/`` there; False when there is none."""
    if directory is None:
        log.warning("the demo page is not installed (package %s): not served", PACKAGE)
        return False
    app.mount("/demo", StaticFiles(directory=directory, html=True), name="demo")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/demo/")

    return True

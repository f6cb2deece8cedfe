"""The docs: the settings page is the one ``ServerConfig`` writes, the README's links resolve, and nothing cites a file outside the repository."""

from __future__ import annotations

import re
from dataclasses import fields

from gateway.config import ServerConfig
from gateway.docs import SETTINGS_PAGE, settings_markdown
from tests.clips import ROOT


def test_settings_page_is_generated_from_the_config() -> None:
    assert SETTINGS_PAGE.read_text(encoding="utf-8") == settings_markdown(), (
        "docs/settings.md is out of date with gateway.config.ServerConfig: run `python -m gateway.docs`"
    )


def test_every_setting_says_what_it_does() -> None:
    assert [f.name for f in fields(ServerConfig) if not f.metadata.get("help")] == []


def test_the_readmes_links_resolve_in_the_repository() -> None:
    """The README is read on GitHub and in a clone, outside the docs site that
    ``mkdocs build --strict`` checks (make check): its relative links must resolve too."""
    readme = ROOT / "README.md"
    targets = [m.group(1) for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme.read_text(encoding="utf-8"))]
    local = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]
    assert local, "the README links to its docs"
    assert [t for t in local if not (ROOT / t).exists()] == []


def test_nothing_cites_a_file_outside_the_repository() -> None:
    """The wire contract is docs/protocol.md: code, tests and docs cite it, not a
    file a clone does not have; the docs name nothing outside the repository.
    (The benchmarks may read a speech corpus from beside it: data, not a citation.)"""
    cited = []
    for folder in ("gateway", "vad", "tests", "bench", "deploy", "demo", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md", ".js", ".yaml", ".cfg") and path.is_file() and path.name != "test_docs.py":
                text = path.read_text(encoding="utf-8", errors="replace")
                if "PROTOCOL.md" in text or (folder == "docs" and "../shared" in text):
                    cited.append(str(path.relative_to(ROOT)))
    assert cited == []

"""The settings page of the docs site is the one ``ServerConfig`` writes: a setting cannot go undocumented."""

from __future__ import annotations

from dataclasses import fields

from gateway.config import ServerConfig
from gateway.docs import SETTINGS_PAGE, settings_markdown


def test_settings_page_is_generated_from_the_config() -> None:
    assert SETTINGS_PAGE.read_text(encoding="utf-8") == settings_markdown(), (
        "docs/settings.md is out of date with gateway.config.ServerConfig: run `python -m gateway.docs`"
    )


def test_every_setting_says_what_it_does() -> None:
    assert [f.name for f in fields(ServerConfig) if not f.metadata.get("help")] == []

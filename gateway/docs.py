"""The settings page of the docs site (docs/settings.md), written from ``ServerConfig``.

The page is generated so that it cannot drift from the server: each row is
a field of ``ServerConfig``, its flag and environment variable named as
``add_arguments`` names them and its help the field's own. A test compares
the checked-in page with ``settings_markdown()``; ``python -m gateway.docs``
writes it again after a setting changes.
"""

from __future__ import annotations

import html
from dataclasses import Field, fields
from pathlib import Path

# The flag and the shown default are the ones `serve --help` prints: one rule each, in config.py.
from .config import ENV_PREFIX, ServerConfig, flag_name, shown_default

SETTINGS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"

INTRO = """\
# Settings

<!-- Generated from gateway.config.ServerConfig by `python -m gateway.docs`; edit the fields' help there. -->

Every setting of `stt-gateway serve` is a flag and an environment variable:
`--some-option` is also `STT_GATEWAY_SOME_OPTION`, and a flag on the command
line wins over the environment. `stt-gateway serve --help` prints the same
list; the server prints the settings it runs with at start-up (a count of
keys, `<set>` for a secret, never their values).

```sh
make run ARGS="--model base --max-streams 6"       # flags, through make
STT_GATEWAY_API_KEYS=key1,key2 .venv/bin/stt-gateway serve --host 0.0.0.0
```

A repeatable flag (`--api-key a --api-key b`) is a comma-separated list in
the environment (`STT_GATEWAY_API_KEYS=a,b`); a switch takes `true` or
`false` (also `1`/`0`, `yes`/`no`, `on`/`off`). Clients may override the
stream defaults (`--endpoint-ms`, `--vad-aggressiveness`, `--max-segment-s`)
per session: see [the wire protocol](protocol.md#1-streaming-get-v0audiostream-websocket).

| flag | environment variable | default | what it does |
| --- | --- | --- | --- |
"""


def settings_markdown() -> str:
    """docs/settings.md: one row per field of ``ServerConfig``, in the order they are declared."""
    return INTRO + "".join(_row(f) for f in fields(ServerConfig))


def _row(f: Field[object]) -> str:
    kind = type(f.default)
    flag = f"`{flag_name(f.name)}`" + (" (repeatable)" if kind is tuple else "")
    env = f"`{ENV_PREFIX}{f.name.upper()}`"
    shown = shown_default(f.default)
    default = f"`{shown}`" if shown and shown != "none" else "none"
    what = _table_text(str(f.metadata.get("help", "")))
    if f.metadata.get("secret"):
        what += " (a secret: never printed)"
    return f"| {flag} | {env} | {default} | {what} |\n"


def _table_text(text: str) -> str:
    """Help text as a table cell shows it: no HTML (``<unix>``), no cell breaks, no emphasis."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("*", "\\*")


def main() -> None:
    # In a clone: the page itself. From an installed wheel (no docs/ beside the
    # package): the page on stdout, for an operator's own docs.
    if not SETTINGS_PAGE.parent.is_dir():
        print(settings_markdown(), end="")
        return
    SETTINGS_PAGE.write_text(settings_markdown(), encoding="utf-8")
    print(f"wrote {SETTINGS_PAGE}")


if __name__ == "__main__":
    main()

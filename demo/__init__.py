"""The browser demo page (plain ES modules, no build step).

Not Python: this file only makes the folder the package ``gateway.demo`` in
the wheel (see pyproject.toml), so that an installed gateway finds the page
through package resources (``gateway.http.demo``).
"""

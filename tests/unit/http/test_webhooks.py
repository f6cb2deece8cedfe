"""Webhook targets: which URLs a session may post to."""

from __future__ import annotations

import pytest


def test_the_allow_list_names_hosts_and_ports():
    from gateway.http.webhooks import WebhookURLError, webhook_target

    allowed = ("hooks.example.com", "10.0.0.5:8080", "[::1]:9000")
    assert webhook_target("https://HOOKS.example.com/a?b=1", allowed) == "https://hooks.example.com/a?b=1"
    assert webhook_target("http://hooks.example.com:80/x", allowed) == "http://hooks.example.com/x"
    assert webhook_target("http://10.0.0.5:8080/x", allowed) == "http://10.0.0.5:8080/x"
    assert webhook_target("http://[::1]:9000/x", allowed) == "http://[::1]:9000/x"
    for url in ("http://hooks.example.com:8443/x", "http://10.0.0.5/x", "https://10.0.0.5:8443/", "http://[::1]/x",
                "http://hooks.example.com\t/x", "http://hooks.example.com:99999/", "gopher://hooks.example.com/", "http:///x"):
        with pytest.raises(WebhookURLError):
            webhook_target(url, allowed)

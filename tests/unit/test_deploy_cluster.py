"""deploy/cluster.py's HAProxy configuration, rendered from deploy/haproxy.cfg without starting anything."""

from __future__ import annotations

import pytest

from deploy.cluster import balancer_config
from tests.clips import ROOT


def test_the_template_gets_the_replicas_and_nothing_else_changes():
    template = ROOT / "deploy" / "haproxy.cfg"
    text = template.read_text()
    rendered = balancer_config(text, [("a", "127.0.0.1:1"), ("b", "127.0.0.1:2")], "/tmp/x.sock")
    servers = [line.strip() for line in rendered.splitlines() if line.strip().startswith("server ")]
    assert servers == ["server a 127.0.0.1:1", "server b 127.0.0.1:2"]
    assert "stats socket /tmp/x.sock" in rendered
    kept = [line for line in text.splitlines() if not line.strip().startswith("server ")]
    assert all(line in rendered.splitlines() for line in kept)
    with pytest.raises(ValueError):
        balancer_config("backend gateways\n    balance leastconn\n", [("a", "h:1")])

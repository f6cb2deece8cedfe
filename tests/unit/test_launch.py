"""The one launcher (gateway.launch): waits for /healthz, and says why a child never served."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.launch import free_port, wait_until_serving

# A stand-in for a gateway: answers /healthz 200 (503 first, as a draining or
# loading server would), anything else 404. No model: this is the unit tier.
HEALTH_SERVER = """
import http.server, sys
answers = iter([503])
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = next(answers, 200) if self.path == "/healthz" else 404
        self.send_response(status); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def test_it_waits_for_a_200_from_healthz():
    port = free_port()
    child = subprocess.Popen([sys.executable, "-c", HEALTH_SERVER, str(port)])
    try:
        wait_until_serving(child, port, timeout=60)
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_a_child_that_exits_first_is_an_error_with_its_log(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("cannot load model 'nope'\n")
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match=r"exited with 3:\ncannot load model 'nope'"):
        wait_until_serving(child, free_port(), timeout=60, log=log)

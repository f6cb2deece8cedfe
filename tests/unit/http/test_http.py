"""The HTTP layer's own logic without a server: admission, keys, the exposure rule, the drain deadline, log masking."""

from __future__ import annotations

import asyncio
import logging

from gateway.frontdoors.dialect import Opening, Upgrade
from gateway.frontdoors.native import NativeDialect
from gateway.http.admission import StreamHub
from gateway.http.auth import Keys, RedactSecrets
from gateway.inference.engine import EngineLoad


class LoadedEngine:
    def __init__(self, final_utilisation: float, final_wait_p95: float):
        self._load = EngineLoad(2, 2, 0, 0, 0, 1.0, final_utilisation, final_wait_p95)

    def load(self):
        return self._load


def test_admission_follows_the_finals_load():
    calm = StreamHub(LoadedEngine(0.2, 0.05), runners={"a", "b"})
    assert calm.refusal() is None
    busy = StreamHub(LoadedEngine(0.85, 0.1), runners={"a", "b"})
    reason, retry = busy.refusal()
    assert "capacity" in reason and retry > 0
    waiting = StreamHub(LoadedEngine(0.1, 0.45), runners={"a"})
    assert waiting.refusal() is not None
    assert StreamHub(LoadedEngine(0.9, 0.9), admission=False, runners={"a"}).refusal() is None
    # The first stream is always let in: there is nobody to make late.
    assert StreamHub(LoadedEngine(0.9, 0.9)).refusal() is None
    assert StreamHub(LoadedEngine(0.0, 0.0), max_streams=2, runners={"a", "b"}).refusal() is not None
    assert StreamHub(LoadedEngine(0.0, 0.0), draining=True).refusal()[0] == "the server is shutting down"


def test_keys_are_matched_exactly():
    keys = Keys(("alpha", "beta"))
    assert keys.required and keys.valid("beta")
    assert not keys.valid("alph") and not keys.valid("alphaa") and not keys.valid(None)
    assert not Keys(()).required


def test_a_door_finds_the_key_in_the_header_or_a_subprotocol():
    def door(headers=None, subprotocols=()):
        opening = NativeDialect.opening(Upgrade("/v0/audio/stream", headers=headers or {}, subprotocols=subprotocols))
        assert isinstance(opening, Opening)
        return opening

    assert door({"authorization": "Bearer alpha"}).api_key == "alpha"
    with_key = door(subprotocols=("stt-gateway", "bearer.beta"))
    assert with_key.api_key == "beta" and with_key.subprotocol == "stt-gateway"
    assert door(subprotocols=("bearer.beta",)).subprotocol == "bearer.beta"  # a browser needs one back
    assert door({"authorization": "Basic eA=="}).api_key is None and door().subprotocol is None


def test_keys_in_query_strings_are_masked_in_the_log():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/v3/ws?sample_rate=16000&token=s3cret&API_KEY=k3y", "1.1", 101), None,
    )
    assert RedactSecrets().filter(record)
    line = record.getMessage()
    assert "s3cret" not in line and "k3y" not in line and "sample_rate=16000&token=<redacted>" in line


def test_a_drain_ends_at_its_deadline_whatever_the_streams_do():
    class Stuck:
        def shutdown(self):
            pass  # never finishes

    hub = StreamHub(LoadedEngine(0.0, 0.0), runners={Stuck()})
    asyncio.run(asyncio.wait_for(hub.drain(timeout=0.3), 5))
    assert hub.draining and hub.runners  # it gave up on the stuck one instead of waiting for ever


def test_no_anonymous_service_on_a_network_by_default():
    from gateway.http.auth import Keys, exposure_refusal

    assert exposure_refusal("127.0.0.1", Keys(()), False) is None
    assert exposure_refusal("::1", Keys(()), False) is None
    assert exposure_refusal("localhost", Keys(()), False) is None
    refusal = exposure_refusal("0.0.0.0", Keys(()), False)
    assert refusal and "--allow-anonymous" in refusal and "--api-key" in refusal
    assert exposure_refusal("0.0.0.0", Keys(("k",)), False) is None
    assert exposure_refusal("0.0.0.0", Keys((), ("admin",)), False) is None
    assert exposure_refusal("10.1.2.3", Keys(()), True) is None

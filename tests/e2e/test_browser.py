"""The browser demo end to end: a real gateway, Debian's Chromium driven headless by selenium,
and a fake microphone that plays real speech (Chromium's --use-file-for-fake-audio-capture).

Skipped where no browser is installed, with a message that says how to install one; CI
(``.ci/run``, which sets STT_GATEWAY_REQUIRE_BROWSER=1) fails instead of skipping.
The screenshot lands in tests/artifacts/; with STT_GATEWAY_UPDATE_SCREENSHOT=1 it is also
copied to docs/demo-screenshot.png, the one the README shows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
import srt

from bench.textnorm import wer
from tests.clips import ARTIFACTS, CLIPS, ROOT, load_clip

from .proxy import CuttableProxy

pytestmark = pytest.mark.browser

# The fake microphone says two sentences with a pause between them, then goes quiet.
SPOKEN = ("fw-stereo-left", "ds-arctic-a0024")
LEAD_S, GAP_S, TAIL_S = 1.0, 1.5, 2.0
MIC_RATE = 48000  # what Chromium's capture runs at; the page resamples to 16 kHz
UPLOADED = "fw-stereo-left"
# The page's finals may be this much worse than offline decoding of the same clips: the
# audio went through Chromium's capture pipeline and the page's resampler, and the live
# finals come from the streaming decoder.
WER_MARGIN = 0.15
INSTALL_HINT = (
    "the browser test needs Debian's Chromium and its driver: sudo apt-get install chromium chromium-driver "
    "(.ci/run installs them)"
)
DOCS_SCREENSHOT = ROOT / "docs" / "demo-screenshot.png"


def _executable(name: str) -> str | None:
    found = shutil.which(name)
    if found is None and os.access(f"/usr/bin/{name}", os.X_OK):
        found = f"/usr/bin/{name}"
    return found


def _no_browser(reason: str) -> None:
    if os.environ.get("STT_GATEWAY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; STT_GATEWAY_REQUIRE_BROWSER=1 demands the browser test run: {INSTALL_HINT}")
    pytest.skip(f"{reason}: {INSTALL_HINT}")


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


@pytest.fixture(scope="module")
def fake_mic(tmp_path_factory) -> tuple[Path, float]:
    """The WAV the fake microphone plays once, and its length in seconds."""
    import soxr

    silence = lambda seconds: np.zeros(int(seconds * 16000), np.float32)  # noqa: E731
    first, second = (load_clip(c) for c in SPOKEN)
    audio = np.concatenate([silence(LEAD_S), first, silence(GAP_S), second, silence(TAIL_S)])
    path = tmp_path_factory.mktemp("browser") / "speech-48k.wav"
    _write_wav(path, soxr.resample(audio, 16000, MIC_RATE), MIC_RATE)
    return path, len(audio) / 16000


@pytest.fixture(scope="module")
def browser(fake_mic, tmp_path_factory):
    chromium, chromedriver = _executable("chromium"), _executable("chromedriver")
    if chromium is None or chromedriver is None:
        _no_browser(f"{'chromium' if chromium is None else 'chromedriver'} is not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _no_browser("selenium is not installed (pip install -e '.[test]')")

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        # Headless and offline: without these Chromium keeps calling Google's hosts.
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        # A microphone without a prompt, playing the speech file once (%noloop), then silence.
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_mic[0]}%noloop",
        "--window-size=1100,1000", "--lang=en-US",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


# -- helpers -------------------------------------------------------------------
def console(driver) -> str:
    """The page's console output, for failure messages."""
    try:
        return "\n".join(f"{e['level']}: {e['message']}" for e in driver.get_log("browser")) or "(empty)"
    except Exception as exc:  # the log is a help, not a requirement
        return f"(no console log: {exc})"


def script_errors(driver) -> list[str]:
    """The page's console errors since the last look, less the network failures the browser
    itself reports (a refused or reset connection is what some tests are about)."""
    network = ("net::", "WebSocket connection to", "Failed to load resource")
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(n in e["message"] for n in network)]


def wait_for(driver, condition, timeout: float, what: str):
    """Poll ``condition(driver)`` until it is truthy; fail with the page's state otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition(driver)
        if value:
            return value
        if time.monotonic() > deadline:
            state = driver.execute_script(
                "return {state: document.getElementById('state').dataset.state,"
                " messages: document.getElementById('messages').innerText,"
                " transcript: document.getElementById('transcript').innerText}"
            )
            pytest.fail(f"timed out after {timeout} s waiting for {what}; page: {state}\nconsole:\n{console(driver)}")
        time.sleep(0.1)


def page(driver, script: str):
    return driver.execute_script(f"return {script}")


def message(driver, code: str) -> dict | None:
    """The message the page shows for ``code`` ({kind, text, retry}), or None."""
    return page(
        driver,
        f"""(() => {{
            const item = document.querySelector('#messages li[data-code="{code}"]');
            return item && {{kind: item.dataset.kind, text: item.innerText, retry: !!item.querySelector('.retry')}};
        }})()""",
    )


def open_demo(driver, base_url: str) -> None:
    driver.get(base_url + "/")
    # The language list is filled once the module has run and asked for the models.
    wait_for(driver, lambda d: page(d, "document.getElementById('language').options.length > 0"), 10, "the page")


def model_options(driver) -> list[str]:
    return page(driver, "[...document.querySelectorAll('#model option')].map(o => o.value)")


def fetch_link(driver, link_id: str) -> str:
    """The content behind a download link (a blob: URL made by the page)."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch(document.getElementById('{link_id}').href).then(r => r.text()).then(done, e => done('ERROR ' + e));"
    )


def save_screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def upload_and_check(driver, base_url: str, offline_text) -> None:
    """The upload panel: one batch request, offered as text, SRT and VTT; its SRT is the server's."""
    clip = CLIPS[UPLOADED]
    driver.find_element("id", "upload-file").send_keys(str(clip.path))
    driver.find_element("id", "upload-submit").click()
    wait_for(driver, lambda d: page(d, "!document.getElementById('upload-result').hidden"), 30, "the upload result")
    assert page(driver, "document.getElementById('upload-srt').download") == f"{clip.path.stem}.srt"
    cues = list(srt.parse(fetch_link(driver, "upload-srt")))
    assert cues, "the SRT download has no cues"
    assert wer(clip.text, " ".join(c.content for c in cues)) <= wer(clip.text, offline_text(clip.id)) + WER_MARGIN

    with clip.path.open("rb") as f:
        served = httpx.post(
            base_url + "/v0/audio/transcriptions",
            data={"model": "whisper-1", "response_format": "srt"},
            files={"file": (clip.path.name, f, "audio/wav")},
            timeout=60,
        )
    served.raise_for_status()
    expected = list(srt.parse(served.text))
    assert [c.content for c in cues] == [c.content for c in expected]
    for mine, theirs in zip(cues, expected):
        assert abs((mine.start - theirs.start).total_seconds()) <= 0.001
        assert abs((mine.end - theirs.end).total_seconds()) <= 0.001

    assert fetch_link(driver, "upload-vtt").startswith("WEBVTT\n\n00:00:")
    shown = page(driver, "document.getElementById('upload-text').textContent")
    assert fetch_link(driver, "upload-txt").strip() == shown.strip()


LIVE_VIEW = """(() => {
    const t = document.getElementById('transcript');
    const stable = t.querySelector('.partial .stable'), tentative = t.querySelector('.partial .tentative');
    return {
        partial: !!t.querySelector('.partial'),
        finals: t.querySelectorAll('.final').length,
        parts: !!stable && !!tentative,
        telling: !!stable && stable.textContent.split(' ').length >= 4 && tentative.textContent.trim() !== '',
        state: document.getElementById('state').dataset.state,
    };
})()"""

FINALS = """[...document.querySelectorAll('#transcript .final')].map(li => ({
    id: +li.dataset.segmentId,
    text: li.querySelector('.text').textContent,
    start: +li.dataset.start,
    end: +li.dataset.end,
    partials: +li.dataset.partialsSeen,
    latency: li.dataset.latencyMs === undefined ? null : +li.dataset.latencyMs,
    title: li.querySelector('.word') && li.querySelector('.word').title,
}))"""


# What the page went through: every state it showed and every message it added, in order.
WATCH = """(() => {
    const state = document.getElementById('state');
    window.seen = {states: [], messages: []};
    new MutationObserver(() => seen.states.push(state.dataset.state))
        .observe(state, {attributes: true, attributeFilter: ['data-state']});
    new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((n) =>
        seen.messages.push({code: n.dataset.code, kind: n.dataset.kind, text: n.textContent}))))
        .observe(document.getElementById('messages'), {childList: true});
})()"""


def caption_fake_mic(driver, plays_for: float) -> dict:
    """Start, watch the captions while the fake microphone plays, stop; what was seen on the way."""
    driver.find_element("id", "start").click()
    started = time.monotonic()
    seen = {"partial_before_final": False, "parts": False, "screenshot": None}
    while time.monotonic() - started < plays_for + 0.5:  # the file plays once from when the mic opens
        view = page(driver, LIVE_VIEW)
        messages = page(driver, "document.getElementById('messages').innerText")
        assert view["state"] in ("starting", "connecting", "live"), (view, messages, console(driver))
        seen["partial_before_final"] |= view["partial"] and view["finals"] == 0
        seen["parts"] |= view["parts"]
        if seen["screenshot"] is None and view["telling"] and view["finals"] > 0:
            # A final, and a partial with a few steady and some tentative words, on screen.
            seen["screenshot"] = save_screenshot(driver, "browser-demo.png")
        time.sleep(0.1)
    driver.find_element("id", "stop").click()
    wait_for(driver, lambda d: page(d, "document.getElementById('state').dataset.state") == "idle", 30, "the stream to close")
    seen["screenshot"] = seen["screenshot"] or save_screenshot(driver, "browser-demo.png")
    save_screenshot(driver, "browser-demo-end.png")
    return seen


# -- the tests ------------------------------------------------------------------
def test_upload_then_live_captions(server, browser, fake_mic, offline_text):
    driver = browser
    open_demo(driver, server.http)

    # The model list comes from GET /v0/models.
    listed = [m["id"] for m in httpx.get(server.http + "/v0/models").json()["data"]]
    wait_for(driver, lambda d: model_options(d) == listed, 10, f"the model list {listed}")
    assert page(driver, "document.getElementById('model').value") == "whisper-1"

    upload_and_check(driver, server.http, offline_text)
    seen = caption_fake_mic(driver, plays_for=fake_mic[1])

    errors = page(driver, "[...document.querySelectorAll('#messages li[data-kind=error]')].map(li => li.innerText)")
    assert not errors, (errors, console(driver))
    assert "segment(s)" in page(driver, "document.getElementById('session-info').textContent")

    # The finals on the page match what was said.
    finals = page(driver, FINALS)
    assert finals, console(driver)
    transcript = " ".join(f["text"] for f in finals)
    reference = " ".join(CLIPS[c].text for c in SPOKEN)
    offline = " ".join(offline_text(c) for c in SPOKEN)
    bound = wer(reference, offline) + WER_MARGIN
    measured = {"transcript": transcript, "wer": wer(reference, transcript), "bound": bound, "finals": finals}
    (ARTIFACTS / "browser-demo.json").write_text(json.dumps(measured, indent=1))
    assert measured["wer"] <= measured["bound"], (transcript, offline, console(driver))
    assert [f["start"] for f in finals] == sorted(f["start"] for f in finals)
    assert all(f["start"] <= f["end"] for f in finals)

    # A partial was shown, steady and tentative parts apart, before the final replaced it.
    assert seen["partial_before_final"], "no partial was on the page before the first final"
    assert seen["parts"], "no partial showed its stable and tentative parts"
    assert finals[0]["partials"] >= 1, finals[0]

    # Hovering a word tells its time and probability.
    assert re.fullmatch(r"\d+:\d\d\.\d – \d+:\d\d\.\d · probability [01]\.\d\d", finals[0]["title"] or ""), finals[0]

    # Latency: from the end of the speech (by the stream's audio clock) to the final.
    latencies = [f["latency"] for f in finals if f["latency"] is not None]
    assert latencies and all(0 < ms < 10_000 for ms in latencies), finals
    assert int(page(driver, "document.getElementById('latency').dataset.lastMs")) == latencies[-1]

    if os.environ.get("STT_GATEWAY_UPDATE_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(seen["screenshot"], DOCS_SCREENSHOT)


def test_wrong_api_key_is_refused_with_a_clear_message(make_server, browser):
    driver = browser
    gateway = make_server(api_keys=("right-key",))
    open_demo(driver, gateway.http)

    # The page notices that the server needs a key and asks for one.
    wait_for(driver, lambda d: message(d, "key-required"), 10, "the key-required message")
    assert page(driver, "!document.getElementById('api-key-form').hidden")

    driver.find_element("id", "api-key").send_keys("wrong-key")
    driver.find_element("id", "api-key-apply").click()
    wait_for(driver, lambda d: message(d, "bad-key"), 10, "the bad-key message")

    # The WebSocket upgrade is refused (401); the browser only sees a failed connection.
    driver.find_element("id", "start").click()
    refused = wait_for(driver, lambda d: message(d, "refused"), 15, "the refused message")
    assert refused["kind"] == "error" and refused["retry"], refused
    assert "refused" in refused["text"] and "API key" in refused["text"], refused
    assert page(driver, "document.getElementById('state').dataset.state") == "idle"
    assert not page(driver, "document.querySelector('#transcript .final, #transcript .partial')")

    # With the right key the models load and Retry streams (the key rides as a subprotocol).
    key = driver.find_element("id", "api-key")
    key.clear()
    key.send_keys("right-key")
    driver.find_element("id", "api-key-apply").click()
    wait_for(driver, lambda d: "tiny.en" in model_options(d) and not message(d, "bad-key"), 10, "the models with the key")
    driver.find_element("css selector", '#messages li[data-code="refused"] .retry').click()
    wait_for(driver, lambda d: page(d, "document.querySelector('#transcript .partial, #transcript .final')"), 20, "captions with the key")
    driver.find_element("id", "stop").click()
    wait_for(driver, lambda d: page(d, "document.getElementById('state').dataset.state") == "idle", 30, "the stream to close")
    assert not message(driver, "refused")


def test_a_full_server_is_waited_for_and_the_stream_starts_by_itself(make_server, browser):
    """The refused upgrade (503) looks like any failed connection to the page; /readyz tells
    it the server is busy and for how long, so it counts down and tries again."""
    from websockets.sync.client import connect

    driver = browser
    gateway = make_server(max_streams=1)
    open_demo(driver, gateway.http)
    wait_for(driver, lambda d: "tiny.en" in model_options(d), 10, "the model list")
    script_errors(driver)  # what came before
    occupant = connect(gateway.ws + "/v0/audio/stream")
    try:
        assert json.loads(occupant.recv(timeout=10))["type"] == "session.created"
        driver.find_element("id", "start").click()
        busy = wait_for(driver, lambda d: message(d, "busy"), 15, "the busy message")
        counted = re.search(r"The server is busy; retrying in (\d+) s", busy["text"])
        assert counted and 1 <= int(counted[1]) <= 10 and busy["kind"] == "info", busy
        assert page(driver, "document.getElementById('state').dataset.state") == "waiting"
        if int(counted[1]) > 1:  # the countdown ticks
            wait_for(driver, lambda d: (message(d, "busy") or busy)["text"] != busy["text"], 3, "the countdown")
    finally:
        occupant.close()  # the slot frees up

    live = "document.getElementById('state').dataset.state === 'live'"
    wait_for(driver, lambda d: page(d, live) and not message(d, "busy"), 15, "the stream to start by itself")
    wait_for(driver, lambda d: page(d, "document.getElementById('session-info').textContent.startsWith('session ')"),
             10, "session.created")
    driver.find_element("id", "stop").click()
    wait_for(driver, lambda d: page(d, "document.getElementById('state').dataset.state") == "idle", 30, "the stream to close")
    assert not message(driver, "refused") and not message(driver, "dropped")
    assert not script_errors(driver)


def test_a_dropped_connection_is_resumed_without_gap_or_duplicate(server, browser, fake_mic, offline_text):
    """Every connection is reset after the first final; the page reconnects, replays the
    audio since that final, and the transcript goes on as if nothing had happened."""
    driver = browser
    session_info = "document.getElementById('session-info').textContent"
    with CuttableProxy(server.port) as proxy:
        open_demo(driver, proxy.http)  # the page's origin and its stream go through the proxy
        script_errors(driver)
        page(driver, WATCH)
        driver.find_element("id", "start").click()
        started = time.monotonic()
        shown_finals = "document.querySelectorAll('#transcript .final').length"
        wait_for(driver, lambda d: page(d, shown_finals) >= 1, 20, "the first final")
        assert page(driver, shown_finals) == 1
        first_session = page(driver, session_info).split(" · ")[0]
        assert proxy.cut() >= 1
        wait_for(driver, lambda d: "reconnecting" in page(d, "seen.states"), 5, "the page to notice the drop")
        wait_for(driver, lambda d: page(d, "seen.states").count("live") >= 2, 15, "the page to reconnect")
        wait_for(driver, lambda d: page(d, session_info).split(" · ")[0] not in ("", first_session), 10,
                 "a new session through the proxy")
        while time.monotonic() - started < fake_mic[1] + 0.5:  # the rest of the speech, live
            time.sleep(0.2)
        driver.find_element("id", "stop").click()
        wait_for(driver, lambda d: page(d, "document.getElementById('state').dataset.state") == "idle", 30, "the stream to close")
        seen, finals, resumed_at = page(driver, "seen"), page(driver, FINALS), page(driver, session_info)
        shown = page(driver, "[...document.querySelectorAll('#messages li')].map(li => li.dataset.kind + ' ' + li.dataset.code)")
        errors, partials = script_errors(driver), page(driver, "document.querySelectorAll('#transcript .partial').length")
        # Away from the proxy before it goes: its connections end with no task left behind.
        driver.get("about:blank")
        proxy.cut()
        time.sleep(0.2)

    (ARTIFACTS / "browser-resume.json").write_text(json.dumps({"seen": seen, "finals": finals}, indent=1))
    states = seen["states"]
    assert states.index("reconnecting") < len(states) - 1 - states[::-1].index("live"), states
    reconnecting = [m for m in seen["messages"] if m["code"] == "reconnecting"]
    assert reconnecting and "Reconnecting" in reconnecting[0]["text"], seen["messages"]
    assert any(m["code"] == "reconnected" for m in seen["messages"]), seen["messages"]
    assert shown == ["info reconnected"], shown  # the reconnecting message went, and no error came
    assert re.search(r"resumed at 0:0\d\.\d", resumed_at), resumed_at  # in the pause after the first sentence
    assert not errors, errors

    # One transcript: ids 0, 1, … without a repeat, times in order without overlap, no text twice.
    assert [f["id"] for f in finals] == list(range(len(finals))), finals
    assert all(f["start"] <= f["end"] for f in finals), finals
    assert all(a["end"] <= b["start"] for a, b in zip(finals, finals[1:])), finals
    texts = [f["text"].strip().lower() for f in finals]
    assert len(set(texts)) == len(texts), texts
    assert not partials, "a partial left behind"
    transcript = " ".join(f["text"] for f in finals)
    reference = " ".join(CLIPS[c].text for c in SPOKEN)
    offline = " ".join(offline_text(c) for c in SPOKEN)
    assert wer(reference, transcript) <= wer(reference, offline) + WER_MARGIN, (transcript, offline)
    assert finals[-1]["end"] > LEAD_S + CLIPS[SPOKEN[0]].duration + GAP_S, finals  # the second sentence, at its time


def test_the_sessions_view_follows_a_phone_call_live(server, browser):
    """A Twilio-shaped call comes in; the page lists it, follows it, and shows
    the caller's and the agent's words in their own columns."""
    import asyncio
    import threading

    from .test_door_twilio import call, phone_line

    sid = "CA" + "b0" * 16  # its own: a call's id is not reused while its snapshot is kept

    caller_text, agent_text, _, _ = phone_line()
    driver = browser
    open_demo(driver, server.http)
    parameters = {"inbound_label": "caller", "outbound_label": "agent"}
    placed = threading.Thread(target=lambda: asyncio.run(call(f"{server.ws}/v0/telephony/twilio", parameters, speed=1.0, call_sid=sid)))
    placed.start()
    try:
        button = f"#session-list button[data-session-id='{sid}']"
        wait_for(driver, lambda d: page(d, f"!!document.querySelector(\"{button}\")"), 15, "the call in the session list")
        page(driver, f"document.querySelector(\"{button}\").click()")
        columns = "[...document.querySelectorAll('#followed .channel')].map(c => c.dataset.label)"
        assert page(driver, columns) == ["caller", "agent"]
        ended = "document.getElementById('followed-title').textContent.includes('ended')"
        wait_for(driver, lambda d: page(d, ended), 60, "the followed call to end")
    finally:
        placed.join(60)
    said = page(driver, "Object.fromEntries([...document.querySelectorAll('#followed .channel')].map(c => "
                        "[c.dataset.label, [...c.querySelectorAll('li.final .text')].map(t => t.textContent).join(' ')]))")
    assert wer(caller_text, said["caller"]) <= 0.3 and wer(agent_text, said["agent"]) <= 0.3, said
    assert "suit" not in said["agent"].lower() and "quilter" not in said["caller"].lower(), said
    assert not page(driver, "document.querySelectorAll('#followed li.partial').length"), "a partial left behind"


def test_a_diarized_upload_shows_each_speaker_and_its_subtitles_are_the_servers(server, browser, tmp_path):
    """Speaker labels ticked: the file panel shows a badge per line, a colour per speaker, and
    the page's SRT (made in the browser) is the server's diarized SRT."""
    from tests.clips import TURNS, turns_of

    driver = browser
    open_demo(driver, server.http)
    audio, _ = turns_of(*TURNS)
    path = tmp_path / "three-voices.wav"
    _write_wav(path, audio, 16000)
    driver.find_element("id", "diarize").click()
    driver.find_element("id", "upload-file").send_keys(str(path))
    driver.find_element("id", "upload-submit").click()
    wait_for(driver, lambda d: page(d, "!document.getElementById('upload-result').hidden"), 60, "the diarized upload result")
    badges = page(driver, "[...document.querySelectorAll('#upload-text .speaker')].map(b => [b.textContent, b.style.getPropertyValue('--hue')])")
    assert [b[0] for b in badges][:2] == ["A", "B"] and {b[0] for b in badges} == {"A", "B", "C"}, badges
    assert len({hue for _, hue in badges}) == 3 and all(dict(badges)[name] == hue for name, hue in badges)  # a colour per speaker
    with path.open("rb") as f:
        served = httpx.post(
            server.http + "/v0/audio/transcriptions", data={"model": "whisper-1", "response_format": "srt", "diarize": "true"},
            files={"file": (path.name, f, "audio/wav")}, timeout=60,
        )
    served.raise_for_status()
    assert [c.content for c in srt.parse(fetch_link(driver, "upload-srt"))] == [c.content for c in srt.parse(served.text)]
    assert "<v A>" in fetch_link(driver, "upload-vtt")
    driver.find_element("id", "diarize").click()  # as it was, for the tests after


def test_an_upload_with_redact_ticked_shows_placeholders_not_the_card_number(server, browser, tmp_path):
    """Redact numbers ticked: the file panel and its subtitles show [PCI] where the card number was."""
    from tests.e2e.test_redaction import shows_secret, spoken_call

    driver = browser
    open_demo(driver, server.http)
    path = tmp_path / "card-call.wav"
    _write_wav(path, spoken_call(), 16000)
    driver.find_element("id", "redact").click()
    driver.find_element("id", "upload-file").send_keys(str(path))
    driver.find_element("id", "upload-submit").click()
    wait_for(driver, lambda d: page(d, "!document.getElementById('upload-result').hidden"), 60, "the redacted upload result")
    shown = page(driver, "document.getElementById('upload-text').textContent")
    assert "[PCI]" in shown and "[SSN]" in shown and not shows_secret(shown), shown
    assert not shows_secret(fetch_link(driver, "upload-srt"))
    driver.find_element("id", "redact").click()  # as it was, for the tests after

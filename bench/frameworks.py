"""The voice-agent frameworks against the gateway: first interim, final latency and WER per service.

    python -m bench.frameworks [--clips 8] [--vad-stop-secs 0.2 0.5]

A gateway (``python -m gateway serve``, tiny.en, default settings) serves
pipecat's and LiveKit Agents' STT services, each run as its users run it
(``tests/e2e/frameworks/*_client.py`` in ``.venv-agents``, built by ``make
test``): held-out clips of the benchmark corpus said one after another
(1.5 s apart), at real-time pace, all of a framework's services at once.
From the second of audio each event arrived at:

- first interim: from a clip's speech onset (frame energy) to the first
  interim of it (services that have interims);
- final latency: from a clip's speech end to the last final of it (a final
  belongs to the clip whose words it shares most);
- WER of all the finals joined against the clips' references.

pipecat runs once per ``--vad-stop-secs`` (its VAD's pause before "user
stopped speaking", 0.2 s by default), which decides how its services cut
utterances. Results: bench/results/frameworks.json and a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from bench.textnorm import wer

from .corpus import ROOT, load_corpus, playlist
from .streaming import ServerProcess, percentile, shown

RESULTS = ROOT / "bench" / "results" / "frameworks.json"
AGENTS_PYTHON = ROOT / ".venv-agents" / "bin" / "python"
CLIENTS = ROOT / "tests" / "e2e" / "frameworks"
SERVICES = {
    "pipecat": ["deepgram", "assemblyai", "openai", "openai-realtime"],
    "livekit": ["deepgram", "assemblyai", "openai-realtime", "openai-batch"],
}


def run_client(framework: str, base: str, wav: Path, utterances: list[list[int]], stop_secs: float | None) -> list[dict]:
    spec = {"base": base, "services": SERVICES[framework], "wav": str(wav), "utterances": utterances, "vad_stop_secs": stop_secs}
    done = subprocess.run(
        [str(AGENTS_PYTHON), str(CLIENTS / f"{framework}_client.py"), json.dumps(spec)],
        capture_output=True, text=True, timeout=1800, cwd=CLIENTS,
    )
    if done.returncode:
        raise SystemExit(f"{framework} client failed: {done.stderr[-2000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def words_of(text: str) -> set[str]:
    return {w.strip(".,?!;:\"'").lower() for w in text.split()} - {""}


def measure(events: list[dict], spans: list[tuple[float, float, float]], texts: list[str]) -> dict:
    """``spans``: per clip (speech onset, speech end, next clip's onset) in
    seconds of audio; ``texts``: per clip its reference. An interim belongs
    to the clip being said when it came; a final to the clip whose words it
    shares most among those begun by then (a service may deliver a final
    after the next clip began)."""
    first_interim, final_latency = [], []
    finals_of: dict[int, list[float]] = {}
    for e in events:
        if e["kind"] != "final":
            continue
        said = words_of(e["text"])
        heard = [i for i, (onset, _, _) in enumerate(spans) if onset <= e["at"]]  # clips begun by then
        if heard and said:
            # the most words in common, the latest clip on a tie
            best = max(heard, key=lambda i: (len(said & words_of(texts[i])), i))
            finals_of.setdefault(best, []).append(e["at"])
    for i, (onset, end, until) in enumerate(spans):
        interims = [e["at"] for e in events if e["kind"] == "interim" and onset <= e["at"] < until]
        if interims:
            first_interim.append(interims[0] - onset)
        if i in finals_of:
            final_latency.append(max(finals_of[i]) - end)
    said = " ".join(e["text"] for e in events if e["kind"] == "final")
    return {
        "first_interim_p50": percentile(first_interim, 50) if first_interim else None,
        "final_p50": percentile(final_latency, 50), "final_p95": percentile(final_latency, 95),
        "wer": round(wer(" ".join(texts), said), 4), "finals": sum(e["kind"] == "final" for e in events),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="corpus clips, said one after another [8]")
    parser.add_argument("--audio-dir", type=Path, default=None, help="the speech clips (manifest.jsonl) [../shared/audio]")
    parser.add_argument("--vad-stop-secs", type=float, nargs="+", default=[0.2], help="pipecat VAD pauses to try [0.2: its default]")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not AGENTS_PYTHON.exists():
        raise SystemExit("no .venv-agents: `make .venv-agents/.installed` (make test) builds it")

    clips = [c for c in load_corpus(args.audio_dir) if 3 <= c.duration <= 20][: args.clips]
    audio = playlist(clips)
    spans = []
    for i, (clip, at) in enumerate(zip(audio.clips, audio.offsets)):
        until = audio.offsets[i + 1] + clip.speech_start if i + 1 < len(clips) else audio.duration + 3.0
        spans.append((at + clip.speech_start, at + clip.speech_end, until))
    utterances = [[int(max(0.0, at - 0.2) * 16000), int((at + clip.duration + 0.3) * 16000)] for clip, at in zip(audio.clips, audio.offsets)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clips.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((np.clip(audio.samples, -1, 1) * 32767).astype("<i2").tobytes())
        server = ServerProcess("tiny.en", [])
        try:
            base = f"http://127.0.0.1:{server.port}"
            runs = [("pipecat", s) for s in args.vad_stop_secs] + [("livekit", None)]
            for framework, stop_secs in runs:
                events = run_client(framework, base, wav, utterances, stop_secs)
                for service in SERVICES[framework]:
                    row = {"framework": framework, "service": service, "vad_stop_secs": stop_secs}
                    row |= measure([e for e in events if e["service"] == service], spans, [c.text for c in clips])
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"clips": [c.id for c in clips], "audio_s": round(audio.duration, 1), "rows": rows}, indent=2) + "\n")
    print("\n| framework | service | VAD pause | first interim p50 | final p50 / p95 | WER |\n|---|---|---|---|---|---|")
    for r in rows:
        pause = f"{r['vad_stop_secs']} s" if r["vad_stop_secs"] is not None else "-"
        print(f"| {r['framework']} | {r['service']} | {pause} | {shown(r['first_interim_p50'], ' s')} | "
              f"{shown(r['final_p50'], ' s')} / {shown(r['final_p95'], ' s')} | {r['wer'] * 100:.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

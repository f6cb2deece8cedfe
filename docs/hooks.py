"""mkdocs hook: the benchmark tables and figures of the docs, rendered from bench/results at build time.

A page asks for one with a marker on a line of its own, ``<!-- table: doors -->``
or ``<!-- figure: streaming -->``, where a hand-copied table used to drift
from the run it quoted. The numbers are the results files' own; what is
written here is only how to show them (columns, units, names). An unknown
marker, a missing file or a result this hook has no words for fails the
build, so a new benchmark row cannot go unseen.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"
MARKER = re.compile(r"^<!-- (table|figure): ([a-z0-9-]+) -->$", re.MULTILINE)
FIGURE_DIR = "assets/bench"  # where the plots land in the site

FIGURES = {
    "streaming": ("streaming.png", "final latency against concurrent streams, tiny.en and base"),
    "streaming-capacity": ("streaming-capacity.png", "final latency against concurrent streams, tiny.en, current code"),
}


# -- formatting ---------------------------------------------------------------
def seconds(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f} s"


def pair(p50: float, p95: float) -> str:
    return f"{p50:.2f} / {p95:.2f} s"


def percent(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def load(name: str) -> Any:
    path = RESULTS / name
    if not path.exists():
        raise PluginError(f"docs/hooks.py: {path} is missing; its benchmark writes it")
    return json.loads(path.read_text(encoding="utf-8"))


def source(*names: str, run: dict[str, Any] | None = None) -> str:
    """The line under a table that says where its numbers come from."""
    files = ", ".join(f"`bench/results/{name}`" for name in names)
    when = ""
    if run and run.get("date"):
        cpus = run.get("machine", {}).get("cpus")
        when = f", run {run['date']}" + (f" on {cpus} cores" if cpus else "")
    return f"\n\n*Rendered from {files}{when}.*"


# -- the tables ----------------------------------------------------------------
def streaming_table() -> str:
    run = load("streaming.json")
    rows = [
        [
            r["model"],
            seconds(r["single"]["first_partial_p50"]),
            f"{r['single']['partials_per_s_mean']:.2f}",
            pair(r["single"]["final_latency_p50"], r["single"]["final_latency_p95"]),
            pair(r["single"]["final_after_sound_p50"], r["single"]["final_after_sound_p95"]),
            str(r["capacity"]["max_realtime_streams"]),
            percent(r["accuracy"]["wer"], 2),
            percent(r["offline"]["wer"], 2),
            f"{r['single']['cpu_s_per_audio_s']:.2f}",
        ]
        for r in run["reports"]
    ]
    header = [
        "model", "first partial p50", "partials/s", "final after last word p50 / p95", "final after sound ends p50 / p95",
        "max real-time streams", "streamed WER", "offline WER", "CPU s per audio s (1 stream)",
    ]
    return table(header, rows) + source("streaming.json", run=run)


def capacity_table() -> str:
    run = load("streaming-capacity.json")
    rows = [
        [
            report["model"],
            str(step["streams"]),
            pair(step["final_latency_p50"], step["final_latency_p95"]),
            seconds(step["first_partial_p50"], 1),
            f"{step['partials_per_s_mean']:.2f}",
            percent(step["wer"]),
            f"{step['cpu_s_per_audio_s']:.2f}",
            "yes" if step["within_bound"] else "no",
        ]
        for report in run["reports"]
        for step in report["capacity"]["steps"]
    ]
    header = ["model", "streams", "final p50 / p95", "first partial p50", "partials/s", "WER", "CPU s per audio s", "held"]
    return table(header, rows) + source("streaming-capacity.json", run=run)


def window_table() -> str:
    run = load("window.json")
    rows = [
        [m["model"], window, percent(m[window]["wer"], 2), seconds(m[window]["decode_s"], 1)]
        for m in run["models"]
        for window in m
        if isinstance(m[window], dict)
    ]
    return table(["model", "encoder window", "WER", "decode time"], rows) + source("window.json")


def batch_table() -> str:
    run = load("batch.json")
    by_path = {(r["model"], r["path"]): r for r in run["results"]}
    models = list(dict.fromkeys(r["model"] for r in run["results"]))
    rows = [
        [
            model,
            f"{by_path[model, 'gateway']['audio_s_per_wall_s']:.1f}× real time",
            f"{by_path[model, 'faster-whisper']['audio_s_per_wall_s']:.1f}×",
            f"{percent(by_path[model, 'gateway']['wer'])} / {percent(by_path[model, 'faster-whisper']['wer'])}",
        ]
        for model in models
    ]
    return table(["model", "gateway", "faster-whisper", "WER gateway / faster-whisper"], rows) + source("batch.json")


DOOR_NAMES = {"native": "native", "openai": "OpenAI Realtime", "deepgram": "Deepgram", "assemblyai": "AssemblyAI"}


def doors_table() -> str:
    run = load("doors.json")
    rows = []
    for door, accuracy in run["accuracy"].items():
        capacity = run["capacity"][door]
        held = capacity["max_realtime_streams"]
        at_held = next((s for s in capacity["steps"] if s["streams"] == held), None)
        rows.append([
            named(DOOR_NAMES, door),
            seconds(accuracy["first_live_text_p50"]),
            pair(accuracy["final_latency_p50"], accuracy["final_latency_p95"]),
            percent(accuracy["wer"]),
            f"{accuracy['cpu_s_per_audio_s']:.2f}",
            str(held),
            f"{at_held['cpu_s_per_audio_s']:.3f}" if at_held else "-",
        ])
    header = [
        "door", "first live text p50", "final latency p50 / p95", "WER", "server CPU s per audio s (4 streams)",
        "real-time streams held (p95 ≤ 1.5 s)", "CPU s per audio s at that many streams",
    ]
    return table(header, rows) + source("doors.json", run=run)


def calls_table() -> str:
    run = load("calls.json")
    rows = [
        [
            str(step["n"]),
            pair(step["calls"]["final_latency_p50"], step["calls"]["final_latency_p95"]),
            percent(step["calls"]["wer"]),
            pair(step["mono"]["final_latency_p50"], step["mono"]["final_latency_p95"]),
            percent(step["mono"]["wer"]),
        ]
        for step in run["steps"]
    ]
    header = ["N", "calls (2N channels): final p50 / p95", "WER", "N mono streams: final p50 / p95", "WER"]
    return table(header, rows) + source("calls.json", run=run)


SERVICE_NAMES = {
    ("pipecat", "deepgram"): "`DeepgramSTTService`",
    ("pipecat", "assemblyai"): "`AssemblyAISTTService`",
    ("pipecat", "openai"): "`OpenAISTTService` (segmented)",
    ("pipecat", "openai-realtime"): "`OpenAIRealtimeSTTService`",
    ("livekit", "deepgram"): "`deepgram.STT`",
    ("livekit", "assemblyai"): "`assemblyai.STT`",
    ("livekit", "openai-realtime"): "`openai.STT` (realtime)",
    ("livekit", "openai-batch"): "`openai.STT(use_realtime=False)`",
}
FRAMEWORK_NAMES = {"pipecat": "pipecat", "livekit": "LiveKit"}
PIPECAT_DEFAULT_STOP_SECS = 0.2  # SileroVADAnalyzer's VADParams.stop_secs


def frameworks_table() -> str:
    run = load("frameworks.json")
    rows = []
    for r in run["rows"]:
        pause = r["vad_stop_secs"]
        rows.append([
            named(FRAMEWORK_NAMES, r["framework"]),
            named(SERVICE_NAMES, (r["framework"], r["service"])),
            "-" if pause is None else f"{pause} s" + (" (default)" if pause == PIPECAT_DEFAULT_STOP_SECS else ""),
            "-" if r["first_interim_p50"] is None else seconds(r["first_interim_p50"]),
            pair(r["final_p50"], r["final_p95"]),
            percent(r["wer"]),
        ])
    header = ["framework", "service", "VAD pause", "first interim p50", "final p50 / p95", "WER"]
    return table(header, rows) + source("frameworks.json")


CLUSTER_RUNS = ("cluster-8-14.json", "cluster-12-18.json", "cluster.json")  # each a ladder of steps, run in this order


def cluster_table() -> str:
    """1 and 2 replicas side by side; each step from the first run that has it."""
    steps: dict[int, dict[int, dict[str, Any]]] = {}  # streams -> replicas -> step
    for name in CLUSTER_RUNS:
        for topology in load(name)["topologies"]:
            for step in topology["steps"]:
                by_replicas = steps.setdefault(step["streams"], {})
                by_replicas.setdefault(topology["replicas"], step)
    replicas = sorted({r for by_replicas in steps.values() for r in by_replicas})
    header = ["streams"]
    for count in replicas:
        label = "1 replica" if count == 1 else f"{count} replicas"
        header += [f"{label}: final p50 / p95", "first partial p50", "partials/s", "WER"]
    rows = []
    for streams in sorted(steps):
        row = [str(streams)]
        for count in replicas:
            step = steps[streams].get(count)
            row += (
                [pair(step["final_latency_p50"], step["final_latency_p95"]), seconds(step["first_partial_p50"], 1),
                 f"{step['partials_per_s_mean']:.2f}", percent(step["wer"])]
                if step else ["-"] * 4
            )
        rows.append(row)
    return table(header, rows) + source(*CLUSTER_RUNS)


SOAK_RUNS = ("soak.json", "soak-12.json")


def soak_table() -> str:
    runs = [(name, load(name)) for name in SOAK_RUNS]

    def column(run: dict[str, Any]) -> list[str]:
        sessions = run["sessions"]
        server = run["server"]
        hooks = run["webhooks"]
        moments = ("start", "after 1 min", "middle", "end")
        return [
            f"{sessions['normal']} normal, {sessions['flush']} flushed, {sessions['drop']} dropped, {sessions['garbage']} garbage",
            f"{run['utterances_started_server']:.0f} / {run['finals_server']:.0f} (server); "
            f"{run['utterances_started_client']} / {run['finals_client']} in the sessions clients saw to the end; "
            f"lost: {run['lost_in_closed_sessions']}",
            f"{hooks['finals_and_ends_sent']:.0f} / {hooks['received']}; sessions out of order: {hooks['sessions_out_of_order']}, "
            f"end not last: {hooks['sessions_whose_end_was_not_last']}, dropped: {hooks['dropped']}, errors: {hooks['errors']}",
            ", ".join(f"{w['p50']:.2f} / {w['p95']:.2f}" for w in run["latency_by_window"].values()) + " s",
            str(run["refused_503"]),
            ", ".join(str(server[m]["fds"]) for m in moments),
            ", ".join(f"{server[m]['rss_mb']:.0f}" for m in moments) + f" MB (max {server['max']['rss_mb']:.0f})",
        ]

    what = [
        "sessions", "utterances started / finalised", "webhooks sent / received by the sink",
        "final latency p50 / p95, per 2-minute window", "refused connections (503)",
        "open file descriptors: start, 1 min, middle, end", "server RSS: start, 1 min, middle, end",
    ]
    columns = [column(run) for _, run in runs]
    header = ["what"] + [f"{run['streams']} streams (`{name}`)" for name, run in runs]
    rows = [[label] + [c[i] for c in columns] for i, label in enumerate(what)]
    return table(header, rows) + source(*SOAK_RUNS)


SOAK_FAULTS = {  # bench/soak.py's fault -> (what it does, what it must get)
    "slow_consumer": ("client that stops reading (raw socket, floods bad frames)", "dropped (`slow_consumer`)"),
    "idle_socket": ("idle socket", "`idle_timeout` within the limit"),
    "half_request": ("half-sent request line and headers", "dropped (`--header-timeout-s`)"),
    "upload_bomb": ("upload bomb: 373 KB of 8-bit audio with a 1 Hz header (103 hours)", "413 before decoding"),
    "low_rate_upload": ("a 100 Hz \"audio\" file", "400"),
    "corrupt_mp3": ("an mp3 with corrupt bytes", "200 with text"),
    "deep_json": ("JSON nested 100 000 deep", "`invalid_message`, the stream goes on"),
    "huge_prompt": ("a 3.6 MB prompt", "`invalid_config`"),
    "eight_channel_upload": ("an 8-channel 7.1 FLAC with speech on one channel", "200, that channel's text"),
    "long_request_line": ("an upgrade with a 9 KB request line (700 Deepgram keyterms)", "414 and closed"),
    "poisoned_webhook_url": ("a session whose `webhook_url` has a TAB before its path", "`invalid_config` at the opening, nothing queued"),
    "trickling_receiver": ("a session whose webhook receiver trickles its answer a byte every 4 s", "the stream closes normally; other webhooks go on"),
    "dtmf_flood": ("a call sending 5000 DTMF keys", "at most 1000 kept, the call goes on"),
}
REFUSED = "client error InvalidStatus"  # the upgrade was answered 503: admission control


def soak_faults_table() -> str:
    run = load("soak.json")
    unknown = set(run["faults"]) - set(SOAK_FAULTS)
    if unknown:
        raise PluginError(f"docs/hooks.py: say what the soak faults {sorted(unknown)} are in SOAK_FAULTS")
    rows = []
    for fault, (what, must) in SOAK_FAULTS.items():
        outcomes: dict[str, int] = run["faults"].get(fault, {})
        refused = outcomes.get(REFUSED, 0)
        expected = sum(n for outcome, n in outcomes.items() if outcome.endswith("(expected)"))
        others = [f"{outcome}: {n}" for outcome, n in outcomes.items() if outcome != REFUSED and not outcome.endswith("(expected)")]
        got = f"{expected} of {sum(outcomes.values()) - refused}"
        got += f" ({refused} refused at admission)" if refused else ""
        got += "; " + ", ".join(others) if others else ""
        rows.append([what, must, got])
    return table(["fault", "what it must get", f"got ({run['streams']} streams)"], rows) + source("soak.json")


UPLOAD_CASES = {  # bench/uploads.py's case -> what the file is
    "mono-2h": "2 h, one channel, a clip of speech every 5 minutes",
    "8ch-2h": "2 h of 8 channels (7.1), speech staggered on each",
    "silence-2h": "2 h of digital silence: the VAD finds nothing, all of it decoded",
}


def uploads_table() -> str:
    runs = load("uploads.json")
    before = {r["case"]: r for r in runs if r["label"].startswith("before")}
    rows = []
    for r in runs:
        if r["label"].startswith("before"):
            continue
        old = before.get(r["case"])
        rows.append([
            f"`{r['case']}`: {named(UPLOAD_CASES, r['case'])} ({r['file_mb']:.1f} MB)",
            f"{r['peak_growth_mb']} MB",
            f"{r['wall_s']:.0f} / {r['server_cpu_s']:.0f} s",
            f"{old['label']}: {old['peak_growth_mb']} MB, {old['wall_s']:.0f} / {old['server_cpu_s']:.0f} s" if old else "not run to the end",
        ])
    header = ["file", "peak RSS growth", "wall / server CPU", "the code before: peak growth, wall / CPU"]
    return table(header, rows) + source("uploads.json")


CAPTION_RUNS = (  # bench/captions.py's runs: the current code, then the levers tried on it
    ("captions.json", "current code (partials every 300 ms)"),
    ("captions-interval400.json", "partials every 400 ms (before)"),
    ("captions-interval300.json", "partials every 300 ms, the run that chose it"),
    ("captions-fairness.json", "partials every 300 ms, run again (per-stream columns in the file)"),
    ("captions-window3.json", "partials on a 3 s window"),
    ("captions-first-partials-first.json", "first partials before refreshes"),
    ("captions-lag1000.json", "stable lag 1 s"),
    ("captions-first-partial-300.json", "first partial at 300 ms"),
    ("captions-repeat-1.json", "every 400 ms, run again"),
    ("captions-repeat-2.json", "every 400 ms, a third run"),
    ("captions-threads1.json", "one thread per decode"),
    ("captions-partial-workers2.json", "partials on both workers, one thread each"),
    ("captions-partial-workers2-repeat.json", "the same, run again"),
    ("captions-partial-workers2-window3.json", "the same, partials on a 3 s window"),
)


def captions_table() -> str:
    """Live captions (bench/captions.py), step by step, for the current code and each lever tried."""
    rows, used = [], []
    for name, label in CAPTION_RUNS:
        run = load(name)
        used.append(name)
        rows += [
            [
                label, step["shape"], f"{step['streams']}" + (f" ({step['streams_refused']} refused)" if step["streams_refused"] else ""),
                seconds(step["first_words_p50"]), seconds(step["caption_update_p50"]),
                seconds(step["word_emission_p50"]), seconds(step["stable_word_p50"]),
                pair(step["final_p50"], step["final_p95"]), str(step["stable_violations"]),
                percent(step["wer"]), f"{step['cpu_s_per_audio_s']:.2f}", "yes" if step["live_captions_hold"] else "no",
            ]
            for step in run["steps"]
        ]
    header = [
        "code", "load", "streams", "first words p50", "caption update p50", "word shown p50", "word stable p50",
        "final p50 / p95", "stable violations", "WER", "CPU s per audio s", "live captions hold",
    ]
    return table(header, rows) + source(*used, run=load(used[0]))


def speakers_table() -> str:
    """Speaker labels offline (bench/speakers.py): the conversations that tuned the clustering, then others."""
    rows, used = [], []
    for name, label in (("speakers.json", "tuning set (seed 0)"), ("speakers-seed1.json", "other conversations (seed 1)")):
        run = load(name)
        used.append(name)
        clip = run["diarization_clip"]
        rows += [
            [
                label, row["clustering"], f"{percent(row['turn_attribution'])} ({percent(row['turn_attribution_worst'], 0)})",
                " / ".join(percent(row["by_voices"][n], 0) for n in ("2", "3", "4")), percent(row["window_accuracy"]),
                percent(row["count_exact"], 0),
                "-" if row["diarization_clip_speakers"] is None else f"{row['diarization_clip_speakers']} of {clip['voices']}",
            ]
            for row in run["rows"]
        ]
    header = [
        "conversations", "clustering", "turn attribution (worst)", "2 / 3 / 4 voices", "windows right",
        "speaker count exact", "diarization clip: voices found",
    ]
    return table(header, rows) + source(*used, run=load(used[0]))


def diarization_table() -> str:
    """Speaker labels through the gateway (bench/diarization.py): files and a live stream's session, word by word."""
    run = load("diarization.json")
    rows = []
    for row in run["rows"]:
        cpu = row.get("cpu_s_per_audio_s")
        rows.append([
            row["path"], f"seed {row['seed']}: {row['conversations']} ({row['audio_s'] / 60:.0f} min)",
            f"{percent(row['turn_attribution'])} ({percent(row['turn_attribution_worst'], 0)})",
            " / ".join(percent(row["by_voices"][n], 0) for n in ("2", "3", "4")), percent(row["words_right"]),
            percent(row["count_exact"], 0), str(row["turns_without_words"]),
            "-" if cpu is None else f"{cpu['plain']:.3f} / {cpu['diarized']:.3f}",
        ])
    clip = run["diarization_clip"]
    header = [
        "path", "conversations", "turn attribution (worst)", "2 / 3 / 4 voices", "words right", "speaker count exact",
        "turns without words", "CPU s per audio s: plain / diarized",
    ]
    note = (
        f"\n\nThe {clip['clip']} clip ({clip['voices']} voices): {clip['found']} found in a file, "
        f"{clip.get('found_live', '-')} live.\n"
    )
    return table(header, rows) + note + source("diarization.json", run=run)


def redaction_table() -> str:
    """Redaction on synthetic calls (bench/redaction.py): what leaked, what was wrongly hidden, batch and live."""
    run = load("redaction.json")
    kinds = ("pci", "ssn", "phone", "email")
    rows = []
    for row in run["rows"]:
        recall = [
            f"{percent(row['recall'][k], 0)} ({row['sentences'][k]})" if k in row["recall"] else "-" for k in kinds
        ]
        shown = f"{row['partials_showing_digits']} of {row['partials']}" if "partials" in row else "-"
        rows.append([
            row["model"], row["path"], f"{row['calls']} (seed {row['seed']})", *recall,
            f"{percent(row['decoys_kept'], 0)} ({row['sentences']['decoy']})", shown,
        ])
    header = [
        "model", "path", "calls", "card, expiry, CVV redacted", "SSN", "phone", "e-mail", "decoys kept",
        "partials showing a sensitive number's digits",
    ]
    note = (
        f"\n\nredact={','.join(run['redact'])}; espeak-ng voices {', '.join(run['voices'])} at "
        f"{', '.join(map(str, run['speeds_wpm']))} words a minute; in brackets, the sentences scored.\n"
    )
    return table(header, rows) + note + source("redaction.json", run=run)


def diarization_cost_table() -> str:
    """What diarize=true costs a stream (bench/streaming.py with --stream-option diarize=true, and without)."""
    runs = [
        ("streaming-diarize-off.json", "off"), ("streaming-diarize-off-repeat.json", "off, again"),
        ("streaming-diarize-on.json", "diarize=true"),
    ]
    rows = []
    for name, label in runs:
        report = load(name)["reports"][0]
        single = report["single"]
        steps = {step["streams"]: step for step in report["capacity"]["steps"]}
        cells = [label, f"{single['final_after_sound_p50']:.2f} / {single['final_after_sound_p95']:.2f} s"]
        for n in (8, 16):
            step = steps[n]
            cells.append(
                f"{step['final_after_sound_p50']:.2f} / {step['final_after_sound_p95']:.2f} s, "
                f"{step['streams_behind']} behind, {step['cpu_s_per_audio_s']:.3f}"
            )
        rows.append(cells)
    header = [
        "streams' option", "1 stream: final after the sound p50 / p95",
        "8 streams: final p50 / p95, behind, CPU s per audio s", "16 streams: the same",
    ]
    singles = []
    for name, label in (("streaming-diarize-single-off.json", "off"), ("streaming-diarize-single-on.json", "diarize=true")):
        single = load(name)["reports"][0]["single"]
        singles.append(f"{label} {single['final_after_sound_p50']:.2f} / {single['final_after_sound_p95']:.2f} s ({single['finals']} finals)")
    note = "\n\nOne stream, 300 s of audio: final after the sound p50 / p95 " + "; ".join(singles) + "."
    used = [name for name, _ in runs] + ["streaming-diarize-single-off.json", "streaming-diarize-single-on.json"]
    return table(header, rows) + note + source(*used, run=load(runs[-1][0]))


TABLES: dict[str, Callable[[], str]] = {
    "diarization-cost": diarization_cost_table,
    "redaction": redaction_table,
    "captions": captions_table,
    "diarization": diarization_table,
    "speakers": speakers_table,
    "streaming": streaming_table,
    "streaming-capacity": capacity_table,
    "window": window_table,
    "batch": batch_table,
    "doors": doors_table,
    "calls": calls_table,
    "frameworks": frameworks_table,
    "cluster": cluster_table,
    "soak": soak_table,
    "soak-faults": soak_faults_table,
    "uploads": uploads_table,
}


def named(names: dict[Any, str], key: Any) -> str:
    if key not in names:
        raise PluginError(f"docs/hooks.py: no name for {key!r} of bench/results; add it beside the table")
    return names[key]


# -- mkdocs events -------------------------------------------------------------
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """The plots live in bench/results, outside docs/: they join the site as files of their own."""
    for name, _ in FIGURES.values():
        files.append(File.generated(config, f"{FIGURE_DIR}/{name}", abs_src_path=str(RESULTS / name)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    def render(match: re.Match[str]) -> str:
        kind, name = match.groups()
        if kind == "table" and name in TABLES:
            return TABLES[name]()
        if kind == "figure" and name in FIGURES:
            filename, caption = FIGURES[name]
            here = posixpath.dirname(page.file.src_uri)
            return f"![{caption}]({posixpath.relpath(f'{FIGURE_DIR}/{filename}', here or '.')})"
        raise PluginError(f"{page.file.src_uri}: unknown marker {match.group(0)}")

    return MARKER.sub(render, markdown)

"""``stt-gateway``: serve, stream a file to a server, or transcribe a file locally."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from . import __version__
from .config import ServerConfig, add_arguments, from_namespace
from .http.allocator import ALLOCATORS, use_jemalloc


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{secs:05.2f}"


def cmd_serve(args: argparse.Namespace) -> int:
    from .http.serve import serve
    from .inference.models import ModelError

    config = from_namespace(args)
    if config.allocator not in ALLOCATORS:
        print(f"stt-gateway: --allocator must be one of {', '.join(ALLOCATORS)}", file=sys.stderr)
        return 2
    if config.allocator == "jemalloc" and args.argv is not None:
        print(f"allocator: {use_jemalloc(args.argv)}", flush=True)
    try:
        serve(config)
    except (ModelError, ValueError) as exc:  # ValueError: settings that do not go together
        print(f"stt-gateway: {exc}", file=sys.stderr)
        return 2
    return 0


class LiveCaptions:
    """Partials rewritten in place on a terminal; finals as timestamped lines."""

    def __init__(self, stream=sys.stdout):
        self.out = stream
        self.tty = stream.isatty()
        self.partial_shown = False

    def interrupt(self, line: str) -> None:
        """A line of the client's own (reconnecting) between captions."""
        if self.partial_shown:
            self.out.write("\r\033[K")
            self.partial_shown = False
        self.out.write(line + "\n")
        self.out.flush()

    def __call__(self, event: dict, arrival: float) -> None:
        kind = event["type"]
        if kind == "transcript.partial" and self.tty:
            stable, text = event["stable_text"], event["text"]
            tentative = text[len(stable) :]
            width = os.get_terminal_size().columns - 12 if self.tty else 200
            line = f"{_clock(event['start'])}  {stable}\033[2m{tentative}\033[0m"
            self.out.write("\r\033[K" + line[: width + 12])
            self.partial_shown = True
        elif kind == "transcript.final":
            s = event["segment"]
            if self.partial_shown:
                self.out.write("\r\033[K")
                self.partial_shown = False
            if s["text"].strip():
                self.out.write(f"[{_clock(s['start'])} -> {_clock(s['end'])}] {s['text'].strip()}\n")
        elif kind == "error":
            self.out.write(f"\r\033[Kerror {event['code']}: {event['message']}\n" if self.tty else f"error {event['code']}: {event['message']}\n")
        elif kind == "session.closed":
            self.out.write(f"-- {event['segments']} segment(s), {event['duration']:.1f} s of audio, language {event['language']}\n")
        self.out.flush()


class JsonLines:
    """Every event as one JSON line, for programs; the client's own notes as ``client.*`` events."""

    def __init__(self, stream=sys.stdout):
        self.out = stream

    def interrupt(self, line: str) -> None:
        self.out.write(json.dumps({"type": "client.reconnecting", "message": line.lstrip("- ")}) + "\n")
        self.out.flush()

    def __call__(self, event: dict, arrival: float) -> None:
        self.out.write(json.dumps(event) + "\n")
        self.out.flush()


def _read_audio(path: str):
    """The file as 16 kHz mono samples, or None after saying why not."""
    from .audio import AudioDecodeError, decode_file

    try:
        return decode_file(path)
    except (AudioDecodeError, OSError) as exc:
        print(f"stt-gateway: cannot read {path}: {exc}", file=sys.stderr)
        return None


def cmd_stream(args: argparse.Namespace) -> int:
    import websockets

    from .client import stream_audio, stream_url

    samples = _read_audio(args.file)
    if samples is None:
        return 2
    url = stream_url(
        args.url, model=args.model, language=args.language, task=args.task,
        interim_results=not args.no_partials, endpoint_ms=args.endpoint_ms, redact=args.redact,
    )
    captions = JsonLines() if args.json else LiveCaptions()

    def reconnecting(attempt: int, reason: str, delay: float) -> None:
        captions.interrupt(f"-- {reason}; reconnecting in {delay:.1f} s (try {attempt} of {args.resumes})")

    try:
        result = asyncio.run(
            stream_audio(
                url, samples, chunk_ms=args.chunk_ms, speed=None if args.fast else args.speed,
                api_key=args.api_key, on_event=captions, busy_retries=5,  # a busy server says when to come back
                resumes=args.resumes, on_reconnect=reconnecting,
            )
        )
    except (OSError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
        print(f"stt-gateway: cannot stream to {url}: {exc}", file=sys.stderr)
        return 1
    if result.gap_s:
        print(f"stt-gateway: {result.gap_s:.1f} s of audio could not be sent again after a drop", file=sys.stderr)
    if result.failure:
        print(f"stt-gateway: {result.failure}", file=sys.stderr)
        return 1
    return 0 if result.closed is not None else 1


def cmd_transcribe(args: argparse.Namespace) -> int:
    from speakers import WeightsError

    from . import formats
    from .audio import AudioDecodeError
    from .core.options import channel_labels, redact_kinds
    from .files.diarization import Diarization, ReferenceClipError, known_speaker
    from .files.transcription import BatchInputError, BatchRequest
    from .files.upload import Upload, transcribe_upload_blocking
    from .inference.engine import Engine
    from .inference.models import LoadSettings, ModelError, ModelRegistry

    try:
        redact = redact_kinds(",".join(args.redact))
    except ValueError as exc:
        print(f"stt-gateway: --redact: {exc}", file=sys.stderr)
        return 2
    diarization = None
    if args.diarize or args.speakers or args.speaker or (args.format == "diarized_json" and not args.multichannel):
        try:
            known = tuple(known_speaker(*_named_clip(spec)) for spec in args.speaker)
            diarization = Diarization(speakers_expected=args.speakers, known=known)
        except (ReferenceClipError, ValueError, OSError) as exc:
            print(f"stt-gateway: {exc}", file=sys.stderr)
            return 2
    try:  # the file is read twice and never held whole: hours of audio take little memory
        upload = Upload.read(args.file, keep_channels=args.multichannel)
    except (AudioDecodeError, OSError) as exc:
        print(f"stt-gateway: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        labels = channel_labels(args.channel_labels, upload.channels) if args.multichannel else ()
    except ValueError as exc:
        print(f"stt-gateway: --channel-labels: {exc} (the file has {upload.channels})", file=sys.stderr)
        return 2
    try:
        registry = ModelRegistry(args.model, LoadSettings(cpu_threads=args.cpu_threads, workers=args.workers))
        engine = Engine(registry)
        words = args.word_timestamps or args.format == "verbose_json"
        request = BatchRequest(
            language=args.language, task=args.task, prompt=args.prompt, word_timestamps=words, diarization=diarization,
            redact=redact,
        )
        result = transcribe_upload_blocking(engine, upload, request, labels)
    except (ModelError, BatchInputError, WeightsError) as exc:
        print(f"stt-gateway: {exc}", file=sys.stderr)
        return 2
    engine.close()
    print(formats.render(result, args.format, words, indent=2).rstrip("\n"))
    return 0


def _named_clip(spec: str) -> tuple[str, bytes]:
    """``NAME=PATH`` of --speaker: the name and the clip's bytes."""
    name, equals, path = spec.partition("=")
    if not equals or not name.strip() or not path:
        raise ValueError(f"--speaker takes NAME=CLIP (a name and an audio file), not {spec!r}")
    with open(path, "rb") as clip:
        return name, clip.read(10_000_000)  # a 10 s clip is far smaller; the decoder refuses what is longer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stt-gateway", description="Streaming real-time transcription gateway (Whisper).")
    parser.add_argument("--version", action="version", version=f"stt-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="run the server",
        description="Run the WebSocket streaming and batch transcription server. Every option also reads "
        "an environment variable STT_GATEWAY_<OPTION>; a flag wins over the environment.",
    )
    add_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    stream = sub.add_parser("stream", help="stream an audio file to a running server and show live captions")
    stream.add_argument("file", help="any audio file FFmpeg reads")
    stream.add_argument("--url", default=os.environ.get("STT_GATEWAY_URL", "ws://127.0.0.1:8000"), help="server base URL: ws(s):// or http(s):// [env STT_GATEWAY_URL]")
    stream.add_argument("--model", help="model id (default: the server's whisper-1)")
    stream.add_argument("--language", help="ISO-639-1 code (default: detect)")
    stream.add_argument("--task", choices=("transcribe", "translate"))
    stream.add_argument("--endpoint-ms", type=int, help="trailing silence that ends an utterance")
    stream.add_argument("--chunk-ms", type=int, default=100, help="audio per WebSocket frame (default 100)")
    stream.add_argument("--speed", type=float, default=1.0, help="pace relative to real time (default 1.0)")
    stream.add_argument("--fast", action="store_true", help="send as fast as the server takes it")
    stream.add_argument("--no-partials", action="store_true", help="ask for finals only")
    stream.add_argument("--redact", metavar="KINDS", help="placeholders for these: pci, ssn, phone, email, numbers (comma-separated)")
    stream.add_argument("--json", action="store_true", help="print every event as a JSON line instead of captions")
    stream.add_argument("--api-key", default=os.environ.get("STT_GATEWAY_API_KEY"), help="API key [env STT_GATEWAY_API_KEY]")
    stream.add_argument(
        "--resumes", type=int, default=8,
        help="after a dropped connection, reconnects in a row to try, resuming where the last final ended (0: none; default 8)",
    )
    stream.set_defaults(func=cmd_stream)

    tr = sub.add_parser("transcribe", help="transcribe a file locally, without a server")
    tr.add_argument("file", help="any audio file FFmpeg reads")
    # Files are not live: the slower, multilingual and more accurate model.
    tr.add_argument("--model", default="base", help="bundled model, CTranslate2 directory or hub name (default %(default)s)")
    tr.add_argument("--language", help="ISO-639-1 code (default: detect)")
    tr.add_argument("--task", choices=("transcribe", "translate"), default="transcribe")
    tr.add_argument("--prompt", help="initial prompt (vocabulary, names, style)")
    tr.add_argument("--format", choices=("text", "json", "srt", "vtt", "verbose_json", "diarized_json"), default="text")
    tr.add_argument("--multichannel", action="store_true", help="transcribe each channel on its own (a call's two parties)")
    tr.add_argument("--channel-labels", help="with --multichannel: names, one per channel, comma-separated (e.g. agent,caller)")
    tr.add_argument(
        "--diarize", action="store_true",
        help="label who said what (speakers A, B, ... in order of first appearance; each channel on its own with --multichannel)",
    )
    tr.add_argument("--speakers", type=int, metavar="N", help="with --diarize: the file holds N speakers (1 to 8)")
    tr.add_argument(
        "--speaker", action="append", default=[], metavar="NAME=CLIP",
        help="with --diarize: a known speaker's name and a 2-10 s clip of their voice (up to 4); the matching voice is named",
    )
    tr.add_argument(
        "--redact", action="append", default=[], metavar="KINDS",
        help="replace these by a placeholder: pci, ssn, phone, email, numbers (comma-separated or repeated)",
    )
    tr.add_argument("--word-timestamps", action="store_true", help="include words in verbose_json")
    tr.add_argument("--workers", type=int, default=ServerConfig.workers, help="decodes in parallel (default %(default)s)")
    tr.add_argument("--cpu-threads", type=int, default=ServerConfig.cpu_threads, help="threads per decode (default %(default)s)")
    tr.set_defaults(func=cmd_transcribe)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The command line, to run again under another allocator (serve); None
    # when called from code, which keeps its own process as it is.
    args.argv = sys.argv[1:] if argv is None else None
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

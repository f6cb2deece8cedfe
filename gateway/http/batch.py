"""The batch front door: OpenAI-compatible transcription, translation and model routes.

Declarative on purpose: the request form is one pydantic model, so bad
fields get FastAPI's 422 validation body naming the field; the work itself is
``gateway.files`` on the shared engine.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field

from gateway import formats
from gateway.audio import AudioDecodeError, AudioTooLong
from gateway.config import ServerConfig
from gateway.core.languages import english_only_refusal, normalise_language
from gateway.core.options import channel_labels, prompt_too_long, redact_kinds
from gateway.core.records import Transcription
from gateway.files.diarization import MAX_KNOWN_SPEAKERS, Diarization, KnownSpeaker, ReferenceClipError, known_speaker
from gateway.files.transcription import BatchInputError, BatchRequest
from gateway.files.upload import Upload, transcribe_upload, upload_text
from gateway.inference.engine import Engine
from gateway.inference.models import ModelError, ModelInfo, ModelRegistry, UnknownModelError, all_languages, is_diarizing_model
from speakers import WeightsError
from speakers.clustering import MAX_SPEAKERS

from . import observability as metrics
from .errors import error_body, openai_error
from .limits import UploadLimit, too_large

LANGUAGES = frozenset(all_languages())


def _known_language(value: str) -> str:
    return normalise_language(value, LANGUAGES) or ""  # "": detect


class TranscriptionForm(BaseModel):
    """The documented multipart fields (besides ``file``).

    None of them is nullable: a form field cannot say null, only be left out
    (their defaults), and the schema says so to clients that generate
    requests from it.
    """

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, description="ID of the model to use; whisper-1 is the server's default model")
    language: Annotated[str, AfterValidator(_known_language)] = Field(
        "",
        description="Language in ISO-639-1 format (any case); detected when omitted or empty",
        json_schema_extra={"enum": ["", *sorted(LANGUAGES)]},
    )
    prompt: str = Field("", description="Optional text to guide the model's style or continue a previous audio segment")
    response_format: Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"] = Field(
        "verbose_json",
        description="Format of the transcription response; diarized_json names each segment's speaker "
        "(on a mono file it implies diarize=true; with multichannel=true, the channel)",
    )
    temperature: float = Field(0, ge=0, le=1, description="Sampling temperature, 0 to 1; 0 uses Whisper's fallback")
    multichannel: bool = Field(
        False, description="Transcribe each channel of the file on its own (a call's agent and caller); segments and words carry channel"
    )
    channel_labels: str = Field(
        "", max_length=600, description="With multichannel: comma-separated names, one per channel (default 0,1,…)"
    )
    diarize: bool = Field(
        False,
        description="Label who said what: segments and words carry speaker (A, B, ... in order of first appearance); "
        "a segment holds one speaker. Implied by diarized_json on a mono file and by the model gpt-4o-transcribe-diarize",
    )
    speakers_expected: int = Field(0, description="With diarize: how many speakers the file holds, 1 to 8 (0 or absent: found)")
    known_speaker_names: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("known_speaker_names", "known_speaker_names[]"),
        description="With diarize: up to 4 names, one per reference clip; a voice that matches a clip is named after it",
    )
    known_speaker_references: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("known_speaker_references", "known_speaker_references[]"),
        description="With diarize: reference clips of the known speakers, 2 to 10 s each, as data URLs (data:audio/wav;base64,...)",
    )
    redact: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("redact", "redact[]"),
        description="Kinds replaced by a placeholder in the text, segments and words: pci (card numbers, expiry dates, "
        "security codes), ssn, phone, email, numbers (every run of 3+ digits); repeated or comma-separated. "
        "Added to the server's --redact, never fewer",
    )
    stream: bool = Field(
        False,
        description="Answer with server-sent events: transcript.text.delta as the file's chunks are decoded, in order, then transcript.text.done",
    )
    timestamp_granularities: list[Literal["word", "segment"]] = Field(
        default_factory=list,
        validation_alias=AliasChoices("timestamp_granularities", "timestamp_granularities[]"),
        description="Granularities of timestamps to populate (sent as timestamp_granularities[] by OpenAI clients)",
    )


# Module level, not inside ``install_batch_routes``: with postponed annotations
# FastAPI resolves these names in the module's globals.
FormFields = Annotated[TranscriptionForm, Form()]
AudioFile = Annotated[UploadFile, File(description="The audio file: any format FFmpeg decodes")]


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error (4xx) or server_error (5xx)")
    param: str | None = Field(None, description="the field at fault, when one is")
    code: str | None = Field(None, description="what went wrong, for programs (e.g. invalid_audio, audio_too_long)")


class ErrorBody(BaseModel):
    """OpenAI's error object, the body of every error but 422."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The file is not audio, holds none, or a field is out of bounds (prompt, model/language)"},
    401: {"model": ErrorBody, "description": "Missing or invalid API key (when the server has keys)"},
    404: {"model": ErrorBody, "description": "Unknown model; the message lists the available ones"},
    413: {"model": ErrorBody, "description": "The upload is larger than --max-upload-mb, or its audio longer than --max-audio-s"},
    503: {
        "model": ErrorBody,
        "description": "The model (or, diarizing, the speaker model) cannot be loaded, or --max-uploads uploads are being transcribed (Retry-After)",
    },
}

# The 200 of a transcription: the response_format asked for, or events with stream=true.
TRANSCRIPTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The transcription in the response_format asked for; with stream=true, server-sent events "
        "(transcript.text.delta, then transcript.text.done)",
        "content": {
            "application/json": {},
            "text/plain": {"schema": {"type": "string"}},
            "application/x-subrip": {"schema": {"type": "string"}},
            "text/vtt": {"schema": {"type": "string"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    },
    **ERROR_RESPONSES,
}

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``work``, cancelled (and ``ClientGone`` raised) if the client leaves
    first: an upload's queued chunks are not decoded for nobody."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass  # the body was read already: the next message is the disconnect

    watcher = asyncio.ensure_future(gone())
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task in done:
        return task.result()
    raise ClientGone


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


async def events(pieces: AsyncGenerator[str | Transcription, None]) -> AsyncIterator[bytes]:
    """Server-sent events of a transcription, as OpenAI streams one: the
    text as it is decoded, then all of it. A client that leaves cancels the
    pieces still queued (the server stops iterating, which closes ``pieces``)."""
    first = True
    try:
        async for piece in pieces:
            if isinstance(piece, str):
                delta = piece.lstrip() if first else piece
                if delta:
                    first = False
                    yield _sse({"type": "transcript.text.delta", "delta": delta})
            else:
                metrics.batch_requests.labels("200").inc()
                yield _sse({
                    "type": "transcript.text.done", "text": piece.text, "language": piece.language,
                    "usage": {"type": "duration", "seconds": round(piece.duration, 3)},
                })
    except (BatchInputError, ModelError) as exc:
        status = 400 if isinstance(exc, BatchInputError) else 503
        metrics.batch_requests.labels(str(status)).inc()
        param, code = ("file", "empty_audio") if status == 400 else ("model", "model_unavailable")
        yield _sse(error_body(status, str(exc), param, code))
    finally:
        await pieces.aclose()


class UploadSlots:
    """How many uploads are transcribed at once: each holds its file's bytes
    (up to --max-upload-mb) and a few chunks of audio per channel, so their
    number bounds what uploads may take of the memory."""

    def __init__(self, limit: int):
        self.limit = limit
        self.taken = 0

    def take(self) -> bool:
        if self.limit and self.taken >= self.limit:
            return False
        self.taken += 1
        return True

    def give_back(self) -> None:
        self.taken -= 1

    async def held_by(self, body: AsyncIterable[Any]) -> AsyncIterator[Any]:
        """``body``, giving the slot back when it ends (or its client leaves)."""
        try:
            async for chunk in body:
                yield chunk
        finally:
            self.give_back()


def _error(status: int, message: str, param: str | None = None, code: str | None = None, **extra: Any) -> JSONResponse:
    metrics.batch_requests.labels(str(status)).inc()
    return openai_error(status, message, param, code, **extra)


def diarization_of(form: TranscriptionForm) -> Diarization | JSONResponse:
    """What a request asks of diarization, its reference clips decoded; a 400 naming the field at fault."""
    if form.speakers_expected and not 1 <= form.speakers_expected <= MAX_SPEAKERS:
        return _error(400, f"speakers_expected must be 1 to {MAX_SPEAKERS}, not {form.speakers_expected}", "speakers_expected")
    names, clips = form.known_speaker_names, form.known_speaker_references
    if len(names) != len(clips):
        return _error(
            400, f"{len(names)} known_speaker_names for {len(clips)} known_speaker_references: one name per clip",
            "known_speaker_names",
        )
    if len(clips) > MAX_KNOWN_SPEAKERS:
        return _error(400, f"at most {MAX_KNOWN_SPEAKERS} known_speaker_references, not {len(clips)}", "known_speaker_references")
    if len({n.strip() for n in names}) != len(names):
        return _error(400, "known_speaker_names must differ", "known_speaker_names")
    known: list[KnownSpeaker] = []
    for name, clip in zip(names, clips, strict=True):
        try:
            known.append(known_speaker(name, data_url_bytes(clip)))
        except ReferenceClipError as exc:
            return _error(400, str(exc), exc.field, "invalid_reference")
    return Diarization(speakers_expected=form.speakers_expected or None, known=tuple(known))


def data_url_bytes(url: str) -> bytes:
    """The bytes of a ``data:<type>;base64,<data>`` URL (how OpenAI takes reference clips)."""
    head, comma, data = url.partition(",")
    if not comma or not head.startswith("data:") or not head.endswith(";base64"):
        raise ReferenceClipError("a known speaker reference is a data URL: data:audio/wav;base64,<the clip in base64>")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ReferenceClipError("a known speaker reference's base64 data is not valid base64") from None


def install_batch_routes(app: FastAPI, engine: Engine, registry: ModelRegistry, config: ServerConfig) -> None:
    max_bytes = int(config.max_upload_mb * 1_000_000)
    app.add_middleware(UploadLimit, max_bytes=max_bytes)
    uploads = UploadSlots(config.max_uploads)

    async def run(http: Request, form: TranscriptionForm, file: UploadFile, task: str) -> Response:
        if not uploads.take():
            return _error(
                503, f"the server is transcribing {uploads.limit} uploads already (--max-uploads); try again shortly",
                code="at_capacity", headers={"Retry-After": "5"},
            )
        handed_on = False  # a streamed answer gives the slot back when its stream ends
        try:
            response = await transcribe_request(http, form, file, task)
            if isinstance(response, StreamingResponse):
                response.body_iterator = uploads.held_by(response.body_iterator)
                handed_on = True
            return response
        finally:
            if not handed_on:
                uploads.give_back()

    async def transcribe_request(http: Request, form: TranscriptionForm, file: UploadFile, task: str) -> Response:
        try:
            model_id = registry.resolve(form.model)
        except UnknownModelError as exc:
            return _error(404, str(exc), "model", "model_not_found", available=exc.available)
        language = form.language or None
        refusal = english_only_refusal(form.model, registry.is_multilingual(model_id), language, task)
        if refusal is not None:
            return _error(400, refusal, "model")
        if form.prompt and len(form.prompt) > config.max_prompt_chars:
            return _error(400, prompt_too_long(len(form.prompt), config.max_prompt_chars), "prompt", "prompt_too_long")
        data = await file.read()
        if len(data) > max_bytes:
            return too_large(max_bytes)
        if not data:
            return _error(400, "the uploaded file is empty", "file", "empty_file")
        if form.multichannel and form.stream:
            return _error(400, "stream=true and multichannel=true together are not served; use one of them", "stream")
        diarize = form.diarize or is_diarizing_model(form.model) or (form.response_format == "diarized_json" and not form.multichannel)
        diarization: Diarization | None = None
        if diarize:
            asked = await asyncio.get_running_loop().run_in_executor(None, diarization_of, form)  # decodes the clips
            if isinstance(asked, JSONResponse):
                return asked
            diarization = asked
            if form.stream:
                return _error(400, "stream=true does not carry speaker labels; leave out stream or diarize", "stream")
        elif form.speakers_expected or form.known_speaker_names or form.known_speaker_references:
            field = "speakers_expected" if form.speakers_expected else "known_speaker_names"
            return _error(400, f"{field} is for diarization: send diarize=true as well", field)
        try:
            redact = redact_kinds([*config.redact, *(k for item in form.redact for k in item.split(","))])
        except ValueError as exc:
            return _error(400, str(exc), "redact")
        loop = asyncio.get_running_loop()
        try:  # the first pass over the file (bounded: no audio is kept); the second is the transcription's
            upload = await loop.run_in_executor(None, Upload.read, data, config.max_audio_s, form.multichannel)
        except AudioTooLong as exc:
            return _error(413, str(exc), "file", "audio_too_long")
        except AudioDecodeError as exc:
            return _error(400, f"{exc}; send wav, flac, mp3, ogg/opus, m4a/aac, webm or another format FFmpeg reads", "file", "invalid_audio")
        if upload.scan.samples == 0:
            return _error(400, "the file contains no audio samples", "file", "empty_audio")
        words = "word" in form.timestamp_granularities
        request = BatchRequest(
            model=model_id, language=language, task=task, prompt=form.prompt or None,
            temperature=form.temperature, word_timestamps=words, diarization=diarization, redact=redact,
        )
        labels: tuple[str, ...] = ()
        if form.multichannel:
            try:
                labels = channel_labels(form.channel_labels or None, upload.channels)
            except ValueError as exc:
                return _error(400, f"{exc} (the file has {upload.channels})", "channel_labels")
        if form.stream:
            return StreamingResponse(
                events(upload_text(engine, upload, request)), media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        try:
            result = await until_disconnected(http, transcribe_upload(engine, upload, request, labels))
        except ClientGone:
            metrics.batch_requests.labels("499").inc()
            return Response(status_code=499)  # nobody reads it; the queued chunks were cancelled
        except BatchInputError as exc:
            return _error(400, str(exc), "file", "empty_audio")
        except ModelError as exc:
            return _error(503, str(exc), "model", "model_unavailable")
        except WeightsError as exc:
            return _error(503, f"speaker labels are not available: {exc}", "diarize", "speaker_model_unavailable")
        metrics.batch_requests.labels("200").inc()
        fmt = form.response_format
        return Response(formats.render(result, fmt, words), media_type=formats.MEDIA_TYPES[fmt])

    for version in ("v0", "v1"):

        @app.post(f"/{version}/audio/transcriptions", tags=["audio"], summary="Transcribe audio", responses=TRANSCRIPTION_RESPONSES)
        async def transcriptions(http: Request, form: FormFields, file: AudioFile) -> Response:
            return await run(http, form, file, "transcribe")

        @app.post(
            f"/{version}/audio/translations", tags=["audio"], summary="Translate audio to English text", responses=TRANSCRIPTION_RESPONSES
        )
        async def translations(http: Request, form: FormFields, file: AudioFile) -> Response:
            return await run(http, form, file, "translate")

        @app.get(f"/{version}/models", tags=["models"], summary="List models")
        async def list_models() -> dict[str, Any]:
            return {"object": "list", "data": [_model_entry(m) for m in registry.describe()]}

    @app.get("/v0/dashboard/models", tags=["models"], summary="Models in the AiBrary SDK's shape")
    async def dashboard_models() -> dict[str, Any]:
        return {
            "models": [
                {
                    "provider": "stt-gateway",
                    "category": "stt",
                    "model_name": m.id,
                    "ai_models_pricing": [],
                    "status": "active",
                    "quality": None,
                    "size": m.alias_of or m.id,
                }
                for m in registry.describe()
            ]
        }


def _model_entry(m: ModelInfo) -> dict[str, Any]:
    return {
        "id": m.id,
        "object": "model",
        "created": 0,
        "owned_by": "stt-gateway",
        "description": m.description,
        "bundled": m.bundled,
        "default": m.is_default,
        "alias_of": m.alias_of,
        "multilingual": m.multilingual,
        "languages": m.languages,
    }

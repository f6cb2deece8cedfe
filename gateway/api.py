"""The batch front door: OpenAI-compatible transcription, translation and model routes.

Declarative on purpose: the request form is one pydantic model, so bad
fields get FastAPI's 422 validation body naming the field; the work itself is
``gateway.batch`` on the shared engine.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import formats, metrics
from .audio import AudioDecodeError, decode_file
from .batch import BatchInputError, BatchRequest, transcribe_async
from .config import ServerConfig
from .engine import Engine
from .models import ModelError, ModelRegistry, UnknownModelError, all_languages

LANGUAGES = frozenset(all_languages())


def _known_language(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value.lower() not in LANGUAGES:
        raise ValueError(f"{value!r} is not an ISO-639-1 language code Whisper knows (e.g. en, de, es)")
    return value.lower()


class TranscriptionForm(BaseModel):
    """The documented multipart fields (besides ``file``)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="ID of the model to use; whisper-1 is the server's default model")
    language: Annotated[str | None, AfterValidator(_known_language)] = Field(
        None, description="Language in ISO-639-1 format; detected when omitted"
    )
    prompt: str | None = Field("", description="Optional text to guide the model's style or continue a previous audio segment")
    response_format: Literal["json", "text", "srt", "verbose_json", "vtt"] = Field(
        "verbose_json", description="Format of the transcription response"
    )
    temperature: float | None = Field(0, ge=0, le=1, description="Sampling temperature, 0 to 1; 0 uses Whisper's fallback")
    timestamp_granularities: list[Literal["word", "segment"]] | None = Field(
        None,
        validation_alias=AliasChoices("timestamp_granularities", "timestamp_granularities[]"),
        description="Granularities of timestamps to populate (sent as timestamp_granularities[] by OpenAI clients)",
    )


# Module level, not inside ``install_batch_routes``: with postponed annotations
# FastAPI resolves these names in the module's globals.
FormFields = Annotated[TranscriptionForm, Form()]
AudioFile = Annotated[UploadFile, File(description="The audio file: any format FFmpeg decodes")]


def _error(status: int, message: str, param: str | None = None, code: str | None = None, **extra) -> JSONResponse:
    metrics.batch_requests.labels(str(status)).inc()
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code, **extra}}
    return JSONResponse(body, status_code=status)


class UploadLimit:
    """413 for a body larger than the configured upload size.

    A declared Content-Length over the limit is refused before the body is
    read; a body without one (chunked) is counted as it arrives. FastAPI turns
    any error raised while it parses a form into a 400 ("error parsing the
    body"), so the refusal is made here, on the way out: once the limit is
    crossed, whatever response the app starts is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and scope["method"] == "POST" and "/audio/" in scope["path"]):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        seen = 0
        exceeded = refused = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _TooLarge()
            return message

        async def refuse() -> None:
            nonlocal refused
            if not refused:
                refused = True
                await _too_large(self.max_bytes)(scope, receive, send)

        async def guarded(message: Message) -> None:
            if not exceeded:
                await send(message)
            elif message["type"] == "http.response.start":
                await refuse()  # the app's own answer to the aborted body is dropped

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            await refuse()


class _TooLarge(Exception):
    pass


def _too_large(max_bytes: int) -> JSONResponse:
    return _error(413, f"the upload is larger than the limit of {max_bytes / 1e6:g} MB", "file", "file_too_large")


def install_batch_routes(app: FastAPI, engine: Engine, registry: ModelRegistry, config: ServerConfig) -> None:
    max_bytes = int(config.max_upload_mb * 1_000_000)
    app.add_middleware(UploadLimit, max_bytes=max_bytes)

    async def run(form: TranscriptionForm, file: UploadFile, task: str) -> Response:
        try:
            model_id = registry.resolve(form.model)
        except UnknownModelError as exc:
            return _error(404, str(exc), "model", "model_not_found", available=exc.available)
        if registry.is_multilingual(model_id) is False and (task == "translate" or form.language not in (None, "en")):
            what = "translate" if task == "translate" else f"transcribe language {form.language!r}"
            return _error(400, f"model {form.model!r} is English-only and cannot {what}; use a multilingual model such as base", "model")
        data = await file.read()
        if len(data) > max_bytes:
            return _too_large(max_bytes)
        if not data:
            return _error(400, "the uploaded file is empty", "file", "empty_file")
        loop = asyncio.get_running_loop()
        try:
            audio = await loop.run_in_executor(None, decode_file, data)
        except AudioDecodeError as exc:
            return _error(400, f"{exc}; send wav, flac, mp3, ogg/opus, m4a/aac, webm or another format FFmpeg reads", "file", "invalid_audio")
        words = "word" in (form.timestamp_granularities or [])
        request = BatchRequest(
            model=model_id, language=form.language, task=task, prompt=form.prompt or None,
            temperature=form.temperature or 0.0, word_timestamps=words,
        )
        try:
            result = await transcribe_async(engine, audio, request)
        except BatchInputError as exc:
            return _error(400, str(exc), "file", "empty_audio")
        except ModelError as exc:
            return _error(503, str(exc), "model", "model_unavailable")
        metrics.batch_requests.labels("200").inc()
        fmt = form.response_format
        return Response(formats.render(result, fmt, words), media_type=formats.MEDIA_TYPES[fmt])

    for version in ("v0", "v1"):

        @app.post(f"/{version}/audio/transcriptions", tags=["audio"], summary="Transcribe audio")
        async def transcriptions(form: FormFields, file: AudioFile):
            return await run(form, file, "transcribe")

        @app.post(f"/{version}/audio/translations", tags=["audio"], summary="Translate audio to English text")
        async def translations(form: FormFields, file: AudioFile):
            return await run(form, file, "translate")

        @app.get(f"/{version}/models", tags=["models"], summary="List models")
        async def list_models():
            return {"object": "list", "data": [_model_entry(m) for m in registry.describe()]}

    @app.get("/v0/dashboard/models", tags=["models"], summary="Models in the AiBrary SDK's shape")
    async def dashboard_models():
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


def _model_entry(m) -> dict:
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

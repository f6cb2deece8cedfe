"""The speaker encoder's weights, read without torch.

The encoder is Resemblyzer's GE2E voice encoder (Apache-2.0): its weights,
``pretrained.pt``, ship inside the ``resemblyzer`` wheel, which is installed
without its dependencies (torch is far too heavy for a 3-layer LSTM), and
never imported: the file is found through the distribution's metadata.

The file is a legacy (pre-zip) torch checkpoint: a few plain pickles, then
the state pickle whose tensors point at storages by key, then the storages'
raw bytes. A pickle can run any callable it names, so the state is read by an
unpickler that resolves only the names a tensor checkpoint needs (an
``OrderedDict``, the tensor rebuild function, the storage types), and the
file's sha256 is pinned as the Whisper models' are.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import struct
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np

RESEMBLYZER = "resemblyzer"
RESEMBLYZER_VERSION = "0.1.4"
WEIGHTS_FILE = "resemblyzer/pretrained.pt"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
WEIGHTS_ENV = "STT_GATEWAY_SPEAKER_WEIGHTS"  # another copy of the same file
INSTALL_HINT = f"pip install --no-deps {RESEMBLYZER}=={RESEMBLYZER_VERSION}"

_STORAGE_TYPES: dict[str, type[np.generic]] = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class WeightsError(RuntimeError):
    """The speaker encoder's weights are missing, altered or unreadable."""


def weights_path() -> Path:
    """Where the weights are: ``STT_GATEWAY_SPEAKER_WEIGHTS``, else the
    installed ``resemblyzer`` distribution's file."""
    override = os.environ.get(WEIGHTS_ENV)
    if override:
        return Path(override)
    try:
        dist = metadata.distribution(RESEMBLYZER)
    except metadata.PackageNotFoundError:
        raise WeightsError(
            f"speaker labels need the speaker encoder's weights, which come in the {RESEMBLYZER} "
            f"package: {INSTALL_HINT} (without its dependencies; torch is not needed)"
        ) from None
    return Path(str(dist.locate_file(WEIGHTS_FILE)))


def load_weights(path: Path | None = None, sha256: str | None = WEIGHTS_SHA256) -> dict[str, np.ndarray]:
    """The encoder's tensors by name (``lstm.weight_ih_l0``, ...), as float32 arrays."""
    path = path or weights_path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read the speaker encoder's weights at {path}: {exc}; {INSTALL_HINT}") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise WeightsError(f"{path} is not the speaker encoder's weights file (sha256 differs from {sha256})")
    state = read_legacy_checkpoint(io.BytesIO(data))
    model = state.get("model_state") if isinstance(state, dict) else None
    if not isinstance(model, dict):
        raise WeightsError(f"{path} holds no model_state")
    return {name: tensor.array() for name, tensor in model.items() if isinstance(tensor, _Tensor)}


# -- the legacy checkpoint format --------------------------------------------------


@dataclass
class _Storage:
    dtype: type[np.generic]
    size: int  # elements
    data: np.ndarray | None = None


@dataclass
class _Tensor:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise WeightsError("a tensor's storage was never read")
        item = data.itemsize
        end = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) + 1 if self.shape else self.offset + 1
        if self.offset < 0 or end > data.size or any(s < 0 for s in self.stride):
            raise WeightsError("a tensor lies outside its storage")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.shape, strides=tuple(s * item for s in self.stride)
        )
        return np.array(view, dtype=np.float32)


def _rebuild_tensor(storage: _Storage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...], *_: Any) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise WeightsError("a tensor without a storage")
    return _Tensor(storage, int(offset), tuple(int(n) for n in shape), tuple(int(s) for s in stride))


@dataclass(frozen=True)
class _StorageType:
    name: str


class _Plain(pickle.Unpickler):
    """The header pickles and the storage keys: plain values only."""

    def find_class(self, module: str, name: str) -> Any:
        raise WeightsError(f"the weights file names {module}.{name} where a plain value belongs")


class _State(pickle.Unpickler):
    """The state pickle: dicts, tensors and storages, nothing else."""

    def __init__(self, file: IO[bytes], storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_TYPES:
            return _StorageType(name)
        raise WeightsError(f"the weights file names {module}.{name}, which a tensor checkpoint does not need")

    def persistent_load(self, pid: Any) -> _Storage:
        # ("storage", type, key, location, size, view): views are not used here
        if not (
            isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
            and isinstance(pid[1], _StorageType) and pid[5] is None
        ):
            raise WeightsError(f"unexpected persistent id {pid!r:.80}")
        _, kind, key, _location, size, _view = pid
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(_STORAGE_TYPES[kind.name], int(size))
        return storage


def read_legacy_checkpoint(file: IO[bytes]) -> Any:
    """The object saved by a pre-1.6 ``torch.save``, its tensors as ``_Tensor``."""
    try:
        if _Plain(file).load() != _LEGACY_MAGIC:
            raise WeightsError("not a torch checkpoint (bad magic number)")
        _Plain(file).load()  # protocol version
        info = _Plain(file).load()
        if isinstance(info, dict) and not info.get("little_endian", True):
            raise WeightsError("a big-endian checkpoint")
        storages: dict[str, _Storage] = {}
        state = _State(file, storages).load()
        keys = _Plain(file).load()
        for key in keys:
            storage = storages[key]
            (count,) = struct.unpack("<q", file.read(8))
            if count != storage.size:
                raise WeightsError(f"storage {key}: {count} elements where {storage.size} were announced")
            raw = file.read(count * np.dtype(storage.dtype).itemsize)
            if len(raw) != count * np.dtype(storage.dtype).itemsize:
                raise WeightsError(f"storage {key} is cut short")
            # Little-endian on disk; native in memory (BLAS skips arrays of a non-native dtype).
            storage.data = np.frombuffer(raw, dtype=np.dtype(storage.dtype).newbyteorder("<")).astype(storage.dtype)
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"unreadable weights file: {exc}") from None
    return state

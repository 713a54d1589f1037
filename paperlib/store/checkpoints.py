"""Reading EDM/GDD network pickles safely, and paperlib's own network format.

EDM and GDD pickles (pickled by EDM's ``torch_utils/persistence.py``) normally rebuild their classes by ``exec``-ing the
module source stored inside the file. paperlib never does that: an allow-list unpickler turns every object
into inert data (tensors, dicts, numbers and :class:`PersistentObject` records), refuses any other global
before anything runs, and the network is rebuilt from the pickle's own init kwargs with paperlib's classes.

paperlib's own format is one ``.safetensors`` file whose metadata holds the JSON config (preconditioner name
and init kwargs) and a digest over that config and the weights together, written atomically: a failed write never
replaces a good file, and an edited header or weight is found when the file is read.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load_bytes
from safetensors.torch import save as safetensors_save_bytes

from paperlib.precond import PRECONDITIONERS, Denoiser, GDDPrecond, build_network
from paperlib.store import safe_pickle
from paperlib.store.files import atomic_write_bytes, file_sha256
from paperlib.store.integrity import IntegrityError, content_digest
from paperlib.store.network_config import ConfigError, check_network_config

FORMAT_NAME = "paperlib-network"
FORMAT_VERSION = 1
NETWORK_FILENAME = "network.safetensors"


class CheckpointError(ValueError):
    """A checkpoint file is missing, malformed, truncated or of the wrong kind; the message names the file."""


class UnsafePickleError(CheckpointError, safe_pickle.UnsafePickleError):
    """A network pickle names a global outside paperlib's allow-list; nothing from the file was executed."""


# ----------------------------------------------------------------------------------------------------------
# Inert stand-ins for what an EDM pickle references.

@dataclass
class PersistentObject:
    """What ``torch_utils.persistence`` pickled: the class name and the instance ``__dict__``, never its code."""

    class_name: str
    version: int
    state: dict
    module_src_chars: int = 0

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})


class ModuleStub:
    """A plain ``torch.nn`` module (e.g. ModuleDict) from the pickle, kept as its ``__dict__`` in ``state``."""

    state: dict = {}

    def __setstate__(self, state: dict) -> None:
        self.state = state


def _stub_class(module: str, name: str) -> type:
    return type(name, (ModuleStub,), {"__module__": f"paperlib.stub.{module}"})


class _NumpyDtype:
    """Stand-in for ``numpy.dtype`` while unpickling: remembers the type code and byte order only."""

    def __init__(self, code: str, align: bool = False, copy: bool = True):
        self.code = code
        self.byteorder = "="

    def __setstate__(self, state: tuple) -> None:
        self.byteorder = state[1] if len(state) > 1 and state[1] in "<>=|" else "="

    def resolve(self) -> np.dtype:
        dtype = np.dtype(self.code).newbyteorder(self.byteorder if self.byteorder != "|" else "=")
        if dtype.kind not in "biufc":
            raise UnsafePickleError(f"numpy scalar of dtype {dtype} is not a plain number")
        return dtype


def _numpy_scalar(dtype: _NumpyDtype, data: bytes = b"") -> Any:
    return np.frombuffer(data, dtype=dtype.resolve())[0].item()


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class _StorageBlobUnpickler(pickle._Unpickler):
    """Reads the pickled header of a legacy (non-zip) ``torch.save`` of one storage."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise UnsafePickleError(f"storage blob refers to {module}.{name}; expected a torch.<Type>Storage")

    def persistent_load(self, pid: tuple) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(f"unexpected persistent id {pid!r} in a storage blob")
        return pid[1], str(pid[2]), int(pid[4])  # dtype, key, element count


def _load_storage_blob(blob: bytes) -> torch.Tensor:
    """Decode ``torch.storage._load_from_bytes``' argument into a flat tensor, without torch's unpickler."""
    f = io.BytesIO(blob)  # reads from memory never allocate more than the blob holds
    for _ in range(3):  # magic number, protocol version, system info
        _StorageBlobUnpickler(f).load()
    dtype, key, numel = _StorageBlobUnpickler(f).load()
    keys = _StorageBlobUnpickler(f).load()
    if keys != [key]:
        raise CheckpointError(f"storage blob lists keys {keys!r}; expected [{key!r}]")
    (count,) = struct.unpack("<q", f.read(8))
    itemsize = torch.empty((), dtype=dtype).element_size()
    raw = f.read(count * itemsize)
    if count != numel or len(raw) != count * itemsize:
        raise CheckpointError("storage blob is truncated")
    return torch.frombuffer(bytearray(raw), dtype=dtype) if count else torch.empty(0, dtype=dtype)


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, requires_grad: bool = False,
                    backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    return storage.as_strided(tuple(size), tuple(stride), offset)


def _rebuild_parameter(tensor: torch.Tensor, requires_grad: bool = False, backward_hooks: Any = None,
                       state: Any = None) -> torch.Tensor:
    return tensor


def _reconstruct_persistent(meta: dict) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise CheckpointError(f"unexpected persistent-object record {type(meta).__name__}")
    return PersistentObject(class_name=str(meta.get("class_name")), version=int(meta.get("version", -1)),
                            state=meta.get("state") or {}, module_src_chars=len(meta.get("module_src") or ""))


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    if not (isinstance(cls, type) and issubclass(cls, ModuleStub)):
        raise UnsafePickleError(f"copyreg._reconstructor called for {cls!r}, which is not an allowed stub")
    return cls.__new__(cls)


def _dill_load_type(name: str) -> type:
    allowed = {"set": set, "frozenset": frozenset, "dict": dict, "list": list, "tuple": tuple}
    if name not in allowed:
        raise UnsafePickleError(f"dill._dill._load_type({name!r}) is not allowed")
    return allowed[name]


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``."""


_ALLOWED_GLOBALS: dict[tuple[str, str], Callable] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_blob,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _NumpyDtype,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dill._dill", "_load_type"): _dill_load_type,
}


class SafeUnpickler(safe_pickle.RestrictedUnpickler):
    """Resolves only allow-listed globals to inert stand-ins; plain torch.nn classes become :class:`ModuleStub`."""

    allowed = _ALLOWED_GLOBALS
    what = "EDM/GDD network pickles"

    def resolve(self, module: str, name: str) -> Any | None:
        if module.startswith("torch.nn.modules.") and name.isidentifier() and name[:1].isupper():
            return _stub_class(module, name)
        return None

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except safe_pickle.UnsafePickleError as exc:
            raise UnsafePickleError(str(exc)) from None

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError(f"{self.source}: unexpected persistent id in a plain pickle (is this a torch.save zip file?)")


def safe_unpickle(path: str | os.PathLike) -> Any:
    """Unpickle ``path`` with :class:`SafeUnpickler`. Raises CheckpointError naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found (expected an EDM/GDD network pickle)")
    try:
        with open(path, "rb") as f:
            return SafeUnpickler(f, source=str(path), max_bytes=path.stat().st_size).load()
    except CheckpointError as exc:  # refusals raised deep inside (storage blobs, numpy, dill) name the file here
        if str(path) in str(exc):
            raise
        raise type(exc)(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, struct.error,
            AttributeError, UnicodeDecodeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable network pickle (truncated or corrupted?): "
                              f"{type(exc).__name__}: {exc}") from None


MAX_MODULE_DEPTH = 64  # EDM's deepest module path has 5 levels


def persistent_state_dict(obj: PersistentObject, source: str = "<pickle>") -> OrderedDict:
    """Walk a pickled module tree into ``nn.Module.state_dict()`` order and names (parameters, buffers, children).

    Each module is visited once: one reached again by a second path (a pickle can share it, and a chain of shared
    pairs doubles the paths at every level) or nested deeper than :data:`MAX_MODULE_DEPTH` is refused, so the work
    is linear in the file's size. EDM's networks share no module."""
    out: OrderedDict = OrderedDict()
    seen: dict[int, str] = {}

    def walk(node: Any, prefix: str, depth: int) -> None:
        where = prefix.rstrip(".") or "the network"
        state = getattr(node, "state", None)
        if not isinstance(node, (PersistentObject, ModuleStub)) or not isinstance(state, dict):
            raise CheckpointError(f"{source}: module {where} is {type(node).__name__}, not a pickled torch module")
        if id(node) in seen:
            raise CheckpointError(f"{source}: module {where} is the same object as {seen[id(node)]}; EDM networks share "
                                  f"no module, and a shared one would be walked once per path")
        if depth > MAX_MODULE_DEPTH:
            raise CheckpointError(f"{source}: modules nested deeper than {MAX_MODULE_DEPTH} levels at {where}")
        seen[id(node)] = where
        parts = {}
        for part in ("_parameters", "_buffers", "_modules"):
            parts[part] = state.get(part) or {}
            if not isinstance(parts[part], dict):
                raise CheckpointError(f"{source}: {where}.{part} is {type(parts[part]).__name__}, not a dict")
        skip = set(state.get("_non_persistent_buffers_set") or ())
        for name, value in parts["_parameters"].items():
            if value is not None:
                out[prefix + str(name)] = value
        for name, value in parts["_buffers"].items():
            if value is not None and name not in skip:
                out[prefix + str(name)] = value
        for name, child in parts["_modules"].items():
            if child is not None:
                walk(child, prefix + str(name) + ".", depth + 1)

    walk(obj, "", 0)
    return out


CLASS_EMBEDDING_SHAPE = (1000, 320)


def read_class_embedding(path: str | os.PathLike) -> torch.Tensor:
    """The pretrained class embedding of GDD's conditional discriminator heads: the authors'
    ``in_embeddings/tf_efficientnet_lite0.pkl``, a pickled ``{'embed': torch.nn.Embedding(1000, 320)}``, read with
    the safe unpickler (the Embedding becomes inert data). Returns its weight, float32 [1000, 320]."""
    data = safe_unpickle(path)
    embed = data.get("embed") if isinstance(data, dict) else None
    params = embed.state.get("_parameters") if isinstance(embed, ModuleStub) else None
    weight = params.get("weight") if isinstance(params, dict) else None
    if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != CLASS_EMBEDDING_SHAPE:
        found = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(embed).__name__
        raise CheckpointError(f"{path}: expected a pickled {{'embed': Embedding{CLASS_EMBEDDING_SHAPE}}} (the authors' "
                              f"in_embeddings/tf_efficientnet_lite0.pkl); found {found}")
    return weight.detach().to(torch.float32).clone()


@dataclass
class PickledNetwork:
    """A network read from an EDM/GDD pickle: class name, init kwargs and weights (nothing executed)."""

    precond: str
    init_kwargs: dict
    state_dict: OrderedDict
    source: str


def read_network_pickle(path: str | os.PathLike, key: str = "ema") -> PickledNetwork:
    """Read the network stored under ``key`` ('ema' or, in GDD snapshots, 'net') of an EDM/GDD pickle."""
    data = safe_unpickle(path)
    if not isinstance(data, dict) or key not in data:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: not a network pickle: expected a dict with key {key!r} "
                              f"(EDM/GDD snapshot layout), found {found}")
    obj = data[key]
    if not isinstance(obj, PersistentObject):
        raise CheckpointError(f"{path}: entry {key!r} is {type(obj).__name__}, not a persistent EDM network object")
    if obj.class_name not in PRECONDITIONERS:
        raise CheckpointError(f"{path}: network class {obj.class_name!r} is not supported; expected one of "
                              f"{sorted(PRECONDITIONERS)}")
    if not isinstance(obj.state.get("_init_kwargs") or {}, dict):
        raise CheckpointError(f"{path}: the network's init kwargs are not a dict")
    kwargs = obj.init_kwargs
    for required in ("img_resolution", "img_channels"):
        if required not in kwargs:
            raise CheckpointError(f"{path}: network init kwargs lack {required!r}; cannot rebuild the architecture")
    return PickledNetwork(obj.class_name, kwargs, persistent_state_dict(obj, str(path)), str(path))


# ----------------------------------------------------------------------------------------------------------
# Building networks from checkpoints.

def _check_names_and_shapes(target: dict, state: dict, source: str, drop_extra: tuple[str, ...] = ()) -> None:
    """Every entry of ``target`` must be in ``state`` with the same shape, and nothing else (but ``drop_extra``)."""
    extra = [k for k in state if k not in target and k not in drop_extra]
    missing = [k for k in target if k not in state]
    if missing or extra:
        raise CheckpointError(f"{source}: weights do not match the architecture rebuilt from its own kwargs: "
                              f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                              f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}")
    for name, value in target.items():
        if not isinstance(state[name], torch.Tensor):
            raise CheckpointError(f"{source}: {name} is {type(state[name]).__name__}, not a tensor")
        if tuple(state[name].shape) != tuple(value.shape):
            raise CheckpointError(f"{source}: {name} has shape {list(state[name].shape)}; expected {list(value.shape)}")


def _load_weights(net: Denoiser, state: dict, source: str, drop_extra: tuple[str, ...] = ()) -> Denoiser:
    """Copy ``state`` into ``net`` by name; every destination entry must be present with the same shape."""
    target = net.state_dict()
    _check_names_and_shapes(target, state, source, drop_extra)
    with torch.no_grad():
        for name, value in target.items():
            value.copy_(state[name])
    return net


def max_params() -> int:
    """The largest network a checkpoint may ask for, in parameters: PAPERLIB_MAX_PARAMS, default 2e9 (EDM's
    largest released network has 296M), so that a small file cannot make paperlib allocate without bound."""
    text = os.environ.get("PAPERLIB_MAX_PARAMS", "2e9")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (1 <= value < 1e15):  # NaN and inf fail too
        raise ValueError(f"PAPERLIB_MAX_PARAMS={text!r}: expected a number of parameters from 1 to 1e15, e.g. 2e9")
    return int(value)


def build_checked(precond: str, init_kwargs: dict, source: str, state: dict | None = None) -> Denoiser:
    """``build_network`` for a config read from a file: its values bounded first
    (:func:`~paperlib.store.network_config.check_network_config`), then built on the meta device (nothing allocated)
    and refused, naming the file, above :func:`max_params`, when the config does not build, or when its weights'
    names and shapes differ from those in ``state`` (the file's own); only then built for real."""
    limit = max_params()
    try:
        check_network_config(init_kwargs, source)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        with torch.device("meta"):
            sized = build_network(precond, **init_kwargs)
        size = sum(p.numel() for p in sized.parameters())
        if size > limit:
            raise CheckpointError(f"{source}: its config asks for a network of {size:,} parameters, above the limit "
                                  f"of {limit:,}; set PAPERLIB_MAX_PARAMS to raise it if the file is trusted")
        if state is not None:
            _check_names_and_shapes(sized.state_dict(), state, source)
        return build_network(precond, **init_kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{source}: cannot rebuild {precond!r} from its config: {exc}") from None


def network_from_pickle(path: str | os.PathLike, key: str = "ema") -> Denoiser:
    """Rebuild the EDM/GDD network in ``path`` with paperlib's classes and load its weights exactly."""
    pickled = read_network_pickle(path, key)
    net = build_checked(pickled.precond, pickled.init_kwargs, str(path), pickled.state_dict)
    return _load_weights(net.eval().requires_grad_(False), pickled.state_dict, str(path))


def generator_from_teacher(path: str | os.PathLike, eps: float = 2e-3) -> GDDPrecond:
    """GDD's generator initialised from a teacher (EDM pickle or paperlib file), as GDD's ``--transfer`` does.

    The generator is a GDDPrecond with the teacher's architecture but no augmentation input and dropout 0; the
    teacher's ``map_augment.weight`` is dropped. The Fourier frequencies and resampling filters come from the teacher.
    """
    teacher = load_network(path)
    model_kwargs = dict(teacher.model_kwargs, augment_dim=0, dropout=0.0)
    generator = GDDPrecond(img_resolution=teacher.img_resolution, img_channels=teacher.img_channels,
                           label_dim=teacher.label_dim, use_fp16=teacher.use_fp16, model_type=teacher.model_type,
                           sigma_data=getattr(teacher, "sigma_data", 0.5), eps=eps, **model_kwargs)
    return _load_weights(generator, teacher.state_dict(), str(path), drop_extra=("model.map_augment.weight",))


# ----------------------------------------------------------------------------------------------------------
# paperlib's own format.

def save_network(net: Denoiser, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Save ``net`` as one safetensors file with its JSON config in the metadata; returns the file path.

    ``path`` may be a folder (the file is ``network.safetensors`` inside it) or a ``.safetensors`` file.
    ``extra`` is JSON-able information kept beside the config (e.g. how the network was trained). The config
    carries ``digest``, the :func:`~paperlib.store.integrity.content_digest` of the config and the weights together.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / NETWORK_FILENAME
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
    config = dict(format=FORMAT_NAME, version=FORMAT_VERSION, precond=type(net).__name__, init_kwargs=net.init_kwargs,
                  extra=extra or {})
    config = json.loads(json.dumps(config))  # the digest covers the config exactly as it will be read back
    config["digest"] = network_digest(config, tensors)
    atomic_write_bytes(path, safetensors_save_bytes(tensors, metadata={"paperlib": json.dumps(config)}))
    return path


def network_digest(config: dict, tensors: dict) -> str:
    """The digest a network file stores: over its config (all but the digest itself) and its weights."""
    return content_digest(dict(config={k: v for k, v in config.items() if k != "digest"}, weights=tensors))


def read_network_file(path: str | os.PathLike, verify: bool = True) -> tuple[dict, dict]:
    """(config, state_dict) of a paperlib network file, its config and weights checked against the digest it stores
    (unless ``verify=False``). A file without that digest (written by an older paperlib) is refused when verifying;
    ``python -m paperlib convert OLD NEW --trust`` re-saves one you trust. Raises CheckpointError naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / NETWORK_FILENAME
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found (expected a paperlib {NETWORK_FILENAME})")
    limit = 8 * max_params() + MAX_HEADER_BYTES
    try:
        data = _sized_network_bytes(path, limit)
        (header_len,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + header_len])
        config = json.loads(header["__metadata__"]["paperlib"])
        state = safetensors_load_bytes(data)
        if not isinstance(config, dict):
            raise TypeError(f"its config is {type(config).__name__}, not a JSON object")
    except (struct.error, ValueError, KeyError, TypeError, SafetensorError, UnicodeDecodeError,
            RecursionError) as exc:  # ValueError: bad JSON, or a whole number too long to read
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: not a readable paperlib network file (truncated or corrupted?): "
                              f"{type(exc).__name__}: {exc}") from None
    if config.get("format") != FORMAT_NAME or config.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format {config.get('format')!r} v{config.get('version')}; "
                              f"expected {FORMAT_NAME!r} v{FORMAT_VERSION}")
    if verify:
        if "digest" not in config:
            raise CheckpointError(f"{path}: carries no digest over its config and weights (written by an older "
                                  f"paperlib), so an edit cannot be found; if you trust it, re-save it with "
                                  f"`python -m paperlib convert {path} OUT_DIR --trust`")
        try:
            matches = config["digest"] == network_digest(config, state)
        except IntegrityError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        if not matches:
            raise CheckpointError(f"{path}: its config or weights do not match the digest stored with them: the file "
                                  f"was corrupted or edited (load_network(..., verify=False) skips this check)")
    return config, state


MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit on a header


def _sized_network_bytes(path: Path, limit: int) -> bytes:
    """A safetensors file's bytes, read only after its size was checked from the file system and its header: at most
    ``limit`` (what a network of :func:`max_params` float64 weights holds), and exactly what its header describes, so
    that a sparse, padded or truncated file is refused before its bulk is read."""
    size = path.stat().st_size
    if size > limit:
        raise CheckpointError(f"{path}: {size:,} bytes, more than a network of the parameter limit holds ({limit:,}); "
                              f"set PAPERLIB_MAX_PARAMS to raise it if the file is trusted")
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{path}: its header claims {header_len:,} bytes in a file of {size:,}; not a "
                                  f"paperlib network file (truncated or corrupted?)")
        header = json.loads(f.read(header_len))
        if not isinstance(header, dict):
            raise TypeError(f"its header is {type(header).__name__}, not a JSON object")
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
        described = 8 + header_len + max([0, *ends])
        if described != size:
            raise CheckpointError(f"{path}: {size:,} bytes, but its header describes {described:,}; not a paperlib "
                                  f"network file as written (truncated or corrupted, or padded?)")
        f.seek(0)
        return f.read()


def load_network(path: str | os.PathLike, key: str = "ema", verify: bool = True) -> Denoiser:
    """Load a network from a paperlib file/folder or an EDM/GDD pickle (``key`` selects 'ema' or 'net');
    ``verify=False`` skips the digest of a paperlib file's config and weights (for speed, or for a trusted file
    written before digests existed).

    Returns the denoiser in eval mode with ``requires_grad`` off, on the CPU.
    """
    path = Path(path)
    if path.suffix == ".pkl":
        return network_from_pickle(path, key)
    config, state = read_network_file(path, verify=verify)
    net = build_checked(config.get("precond"), config.get("init_kwargs") or {}, str(path), state)
    return _load_weights(net.eval().requires_grad_(False), state, str(path))


@functools.lru_cache(maxsize=None)
def _weights_digest(path: str, mtime_ns: int) -> str:
    if path.endswith(".pkl"):
        return "sha256:" + file_sha256(path)
    return "weights:" + content_digest(read_network_file(path)[1])


def weights_identity(path: str | os.PathLike) -> str:
    """A network file by its weights (the digest of its tensors; an EDM pickle by its bytes), so that a teacher
    re-saved or moved to another folder is the same teacher: 'weights:<hex>' or 'sha256:<hex>', 28 characters."""
    return _weights_digest(str(path), Path(path).stat().st_mtime_ns)[:28]

"""Reading PyTorch state dicts (`G.pth`, `D.pth`) as name -> numpy array, with or without torch.

With torch installed, `torch.load(weights_only=True)`. Without it, both formats
of `torch.save` (the zip archive of PyTorch >= 1.6 and the older stream of
pickles followed by raw storages) are read by a restricted unpickler that
accepts only tensor rebuilds, storages and OrderedDicts: a pickle naming any
other global (one that would run code) is refused before anything is called.
"""

import collections
import importlib.util
import pickle
import struct
import zipfile

import numpy as np

from keras_vaegan.weights import ConversionError

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


def load_state_dict(path, use_torch=None):
    """OrderedDict of name -> numpy array; `use_torch=None` uses torch when it is installed."""
    if use_torch is None:
        use_torch = importlib.util.find_spec("torch") is not None
    state = _load_with_torch(path) if use_torch else _load_restricted(path)
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ConversionError(f"{path}: holds a {type(state).__name__}, not a state dict of named tensors")
    bad = [key for key, value in state.items() if not isinstance(value, np.ndarray)]
    if bad:
        raise ConversionError(f"{path}: {bad[0]} is a {type(state[bad[0]]).__name__}, not a tensor")
    return state


def _load_with_torch(path):
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except pickle.UnpicklingError as error:
        raise ConversionError(f"{path}: refused: the pickle needs more than tensors ({_first(error)})") from None
    except Exception as error:  # torch raises many types for damaged archives
        raise ConversionError(f"{path}: not a readable PyTorch file ({_first(error)})") from None
    if not isinstance(state, dict):
        return state
    return collections.OrderedDict(
        (k, v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v) for k, v in state.items()
    )


def _first(error):
    text = str(error).strip()
    return text.splitlines()[0][:160] if text else type(error).__name__


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
    def __init__(self, dtype, key, count):
        self.dtype, self.key, self.count = dtype, key, count
        self.array = None


class _Tensor:
    """A tensor whose storage may be read after the pickle (the older format)."""

    def __init__(self, storage, offset, size, stride, *unused):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self):
        return _rebuild_tensor(self.storage, self.offset, self.size, self.stride)


def _rebuild_tensor(storage, offset, size, stride):
    item = storage.array.dtype.itemsize
    if size and (min(stride) < 0 or offset + sum((n - 1) * s for n, s in zip(size, stride)) >= len(storage.array)):
        raise ConversionError(f"a tensor of size {tuple(size)} runs past its storage")
    if not size:
        return storage.array[offset : offset + 1].reshape(()).copy()
    view = np.lib.stride_tricks.as_strided(storage.array[offset:], tuple(size), [s * item for s in stride])
    return np.array(view)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler of `torch.save` zip archives that resolves only tensor rebuilds, storages and OrderedDict."""

    def __init__(self, handle, storages, archive=None, prefix=""):
        super().__init__(handle)
        self.storages, self.archive, self.prefix = storages, archive, prefix

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _Tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.60}")
        dtype, key, count = pid[1], pid[2], pid[4]
        if not isinstance(dtype, type) or dtype not in STORAGE_DTYPES.values():
            raise pickle.UnpicklingError(f"unknown storage type {dtype!r:.60}")
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, key, count)
            if self.archive is not None:
                _fill(self.storages[key], self.archive.read(f"{self.prefix}data/{key}"))
        return self.storages[key]


def _fill(storage, data):
    array = np.frombuffer(data, storage.dtype)
    if len(array) < storage.count:
        raise ConversionError(f"storage {storage.key} holds {len(array)} values, the pickle says {storage.count}")
    storage.array = array[: storage.count]


def _materialize(state):
    """The unpickled dict with its tensors as numpy arrays."""
    if not isinstance(state, dict):
        return state
    return collections.OrderedDict((k, v.array() if isinstance(v, _Tensor) else v) for k, v in state.items())


def _load_legacy(handle):
    """The older torch.save stream: magic, protocol, system info, the pickle, storage keys, raw storages."""
    if handle.read(4) == b"PK\x03\x04":
        raise ConversionError("damaged or truncated zip archive")
    handle.seek(0)
    plain = _RestrictedUnpickler(handle, {})
    try:
        magic = plain.load()
    except Exception:  # any byte stream that does not start with the magic number's pickle
        magic = None
    if magic != LEGACY_MAGIC:
        raise ConversionError("not written by torch.save")
    plain.load()
    plain.load()
    storages = {}
    state = _RestrictedUnpickler(handle, storages).load()
    for key in _RestrictedUnpickler(handle, {}).load():
        storage = storages[key]
        (count,) = struct.unpack("<q", handle.read(8))
        item = np.dtype(storage.dtype).itemsize
        _fill(storage, handle.read(count * item))
    return _materialize(state)


def _load_restricted(path):
    try:
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as handle:
                return _load_legacy(handle)
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except pickle.UnpicklingError as error:
        raise ConversionError(f"{path}: refused: the pickle needs more than tensors ({_first(error)})") from None
    except ConversionError as error:
        raise ConversionError(f"{path}: {error}") from None
    except (zipfile.BadZipFile, KeyError, EOFError, ValueError, TypeError, AttributeError, OSError,
            struct.error) as error:
        raise ConversionError(f"{path}: damaged or truncated PyTorch file ({_first(error)})") from None
    with archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if not pickles:
            raise ConversionError(f"{path}: holds no data.pkl: not written by torch.save")
        prefix = pickles[0][: -len("data.pkl")]
        try:
            with archive.open(pickles[0]) as handle:
                return _materialize(_RestrictedUnpickler(handle, {}, archive, prefix).load())
        except pickle.UnpicklingError as error:
            raise ConversionError(f"{path}: refused: the pickle needs more than tensors ({_first(error)})") from None
        except ConversionError as error:
            raise ConversionError(f"{path}: {error}") from None
        except (zipfile.BadZipFile, KeyError, EOFError, ValueError, TypeError, AttributeError, OSError) as error:
            raise ConversionError(f"{path}: damaged or truncated PyTorch file ({_first(error)})") from None

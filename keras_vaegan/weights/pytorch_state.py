"""Reading PyTorch state dicts (`G.pth`, `D.pth`) as name -> numpy array, with or without torch.

With torch installed, `torch.load(weights_only=True)`. Without it, the zip
format of `torch.save` (PyTorch >= 1.6) is read by a restricted unpickler that
accepts only tensor rebuilds, storages and OrderedDicts: a pickle naming any
other global (one that would run code) is refused before anything is called.
"""

import collections
import importlib.util
import pickle
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


class _Storage:
    def __init__(self, dtype, key):
        self.dtype, self.key = dtype, key


def _rebuild_tensor(storage, offset, size, stride, *unused):
    item = storage.array.dtype.itemsize
    if size and (min(stride) < 0 or offset + sum((n - 1) * s for n, s in zip(size, stride)) >= len(storage.array)):
        raise ConversionError(f"a tensor of size {tuple(size)} runs past its storage")
    if not size:
        return storage.array[offset : offset + 1].reshape(()).copy()
    view = np.lib.stride_tricks.as_strided(storage.array[offset:], tuple(size), [s * item for s in stride])
    return np.array(view)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler of `torch.save` zip archives that resolves only tensor rebuilds, storages and OrderedDict."""

    def __init__(self, handle, archive, prefix):
        super().__init__(handle)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.60}")
        dtype, key, count = pid[1], pid[2], pid[4]
        if not isinstance(dtype, type) or dtype not in STORAGE_DTYPES.values():
            raise pickle.UnpicklingError(f"unknown storage type {dtype!r:.60}")
        data = self.archive.read(f"{self.prefix}data/{key}")
        array = np.frombuffer(data, dtype)
        if len(array) < count:
            raise ConversionError(f"storage {key} holds {len(array)} values, the pickle says {count}")
        storage = _Storage(dtype, key)
        storage.array = array[:count]
        return storage


def _load_restricted(path):
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise ConversionError(
            f"{path}: not a zip archive of torch.save ({_first(error)}); install torch to read older formats"
        ) from None
    with archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if not pickles:
            raise ConversionError(f"{path}: holds no data.pkl: not written by torch.save")
        prefix = pickles[0][: -len("data.pkl")]
        try:
            with archive.open(pickles[0]) as handle:
                return _RestrictedUnpickler(handle, archive, prefix).load()
        except pickle.UnpicklingError as error:
            raise ConversionError(f"{path}: refused: the pickle needs more than tensors ({_first(error)})") from None
        except ConversionError as error:
            raise ConversionError(f"{path}: {error}") from None
        except (zipfile.BadZipFile, KeyError, EOFError, ValueError, TypeError, OSError) as error:
            raise ConversionError(f"{path}: damaged or truncated PyTorch file ({_first(error)})") from None

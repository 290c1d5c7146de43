"""Reading the authors' Torch7 networks (`<class>_G_cpu.t7`, `<class>_G_gpu.t7`) with torchfile and numpy.

The file holds an `nn.Sequential` (see mapping.TORCH7_MODULES); CPU files use
`nn.` modules and FloatTensors, GPU files `cudnn.` modules and CudaTensors,
read the same way. Tensor and storage readers are bounds-checked here, so a
truncated or damaged file is a ConversionError, never a read past the data.
"""

import os
import struct

import numpy as np

from keras_vaegan.weights import ConversionError
from keras_vaegan.weights.blocks import Block, architecture, check_shape, keras_names
from keras_vaegan.weights.mapping import TORCH7_CONV_FIELDS, TORCH7_MODULES, TORCH7_NORM_FIELDS

PREFIXES = ("nn.", "cudnn.")
CONTAINERS = ("Sequential", "Container")
FLOAT_TYPES = {"Float": np.float32, "Double": np.float64, "Cuda": np.float32, "CudaDouble": np.float64}
# Fields of Torch7 modules that are buffers or gradients, not parameters (never converted).
BUFFER_FIELDS = ("output", "gradInput", "finput", "fgradInput", "ones", "save_mean", "save_std", "buffer")


class _Truncated(Exception):
    pass


def _storage_reader(dtype):
    itemsize = np.dtype(dtype).itemsize

    def read(reader, version):
        count = reader.read_long()
        here = reader.f.tell()
        remaining = os.fstat(reader.f.fileno()).st_size - here
        if count < 0 or count * itemsize > remaining:
            raise _Truncated(f"a storage of {count} values at byte {here} runs past the end of the file")
        return np.frombuffer(reader.f.read(count * itemsize), dtype)

    return read


def _tensor_reader(dtype):
    def read(reader, version):
        ndim = reader.read_int()
        if not 0 <= ndim <= 16:
            raise _Truncated(f"a tensor with {ndim} dimensions")
        size = [reader.read_long() for _ in range(ndim)]
        stride = [reader.read_long() for _ in range(ndim)]
        offset = reader.read_long() - 1
        storage = reader.read_obj()
        if storage is None or ndim == 0 or 0 in size:
            return np.zeros([0] * max(ndim, 1), dtype)
        if min(size) < 0 or min(stride) < 0 or offset < 0:
            raise _Truncated(f"a tensor of size {size}, stride {stride}, offset {offset}")
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= len(storage):
            raise _Truncated(f"a tensor of size {size} needs {last + 1} values, its storage holds {len(storage)}")
        item = storage.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(storage[offset:], size, [s * item for s in stride])
        return np.array(view)

    return read


def _load(path):
    try:
        import torchfile
    except ImportError:
        raise ConversionError(
            f"{path}: reading Torch7 files needs torchfile (pip install 'keras-vaegan[torch7]')"
        ) from None

    for name, dtype in FLOAT_TYPES.items():
        torchfile.type_handlers[f"torch.{name}Storage".encode()] = _storage_reader(dtype)
        torchfile.type_handlers[f"torch.{name}Tensor".encode()] = _tensor_reader(dtype)
    try:
        return torchfile.load(path)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except OSError as error:
        raise ConversionError(f"{path}: cannot be read ({error.strerror or error})") from None
    except _Truncated as error:
        raise ConversionError(f"{path}: damaged or truncated Torch7 file ({error})") from None
    except (struct.error, EOFError):
        raise ConversionError(f"{path}: truncated Torch7 file (ends in the middle of an object)") from None
    except (torchfile.T7ReaderException, ValueError, NotImplementedError, MemoryError, OverflowError) as error:
        raise ConversionError(f"{path}: not a binary Torch7 file ({error})") from None


def _class_name(module):
    is_torch_object = callable(getattr(type(module), "torch_typename", None))
    typename = module.torch_typename().decode("latin-1") if is_torch_object else ""
    for prefix in PREFIXES:
        if typename.startswith(prefix):
            return typename, typename[len(prefix):]
    return typename or type(module).__name__, None


def _flatten(module, path, where):
    """The leaf modules of nested nn.Sequential containers, with their `modules[i]` paths."""
    typename, name = _class_name(module)
    if name not in CONTAINERS:
        return [(where, typename, name, module)]
    children = _field(module, "modules")
    if not isinstance(children, list):
        raise ConversionError(f"{path}: {where or 'the top object'} ({typename}) holds no module list")
    leaves = []
    for i, child in enumerate(children, start=1):
        leaves += _flatten(child, path, f"{where}modules[{i}]" if not where else f"{where}.modules[{i}]")
    return leaves


def _field(module, name):
    return module._obj.get(name.encode()) if isinstance(module._obj, dict) else None


def _tensor_fields(module):
    return {
        key.decode("latin-1"): value
        for key, value in module._obj.items()
        if isinstance(key, bytes) and isinstance(value, np.ndarray)
    }


def _check_fields(path, where, module, known):
    """ConversionError for any non-empty tensor field that is neither converted nor a known buffer."""
    for name, value in _tensor_fields(module).items():
        if name in known or name in BUFFER_FIELDS or name.startswith(("grad", "_")) or value.size == 0:
            continue
        raise ConversionError(f"{path}: {where}.{name} (shape {value.shape}) is an unexpected tensor")


def _geometry(path, where, module, spec):
    """ConversionError unless stride/padding/adjustment are equivalent to our layer."""
    def value(*names):
        for name in names:
            found = _field(module, name)
            if found is not None:
                return found
        raise ConversionError(f"{path}: {where} has no {names[0]} field (a Torch7 nn older than 2016?)")

    pads = [value(f"pad{a}", f"p{a}") for a in "THW"]
    strides = [value(f"d{a}") for a in "THW"]
    adjust = [(_field(module, f"adj{a}") or 0) for a in "THW"]
    wanted_pad = 1 if spec.same_padding else 0
    if any(p != wanted_pad for p in pads) or any(adjust) or (spec.same_padding and any(s != 2 for s in strides)):
        raise ConversionError(
            f"{path}: {where} has stride {strides}, padding {pads}, adjustment {adjust}, but our layer needs "
            f"padding {wanted_pad}, no adjustment" + (" and stride 2" if spec.same_padding else "")
        )


def read_torch7(path, zero_biases):
    """(kind, resolution, latent_dim, blocks, rows) of a Torch7 3D-GAN generator or discriminator.

    `zero_biases` reproduces the authors' sampler, which zeroes every
    convolution bias before use; otherwise biases are folded (see blocks).
    """
    top = _load(path)
    if _class_name(top)[1] not in CONTAINERS:
        raise ConversionError(f"{path}: holds a {_class_name(top)[0]}, not an nn.Sequential network")
    leaves = _flatten(top, path, "")
    names = tuple(name for _, _, name, _ in leaves)
    kind = next((k for k, modules in TORCH7_MODULES.items() if names and names[0] == modules[0]), None)
    if kind is None:
        first = leaves[0][1] if leaves else "nothing"
        raise ConversionError(f"{path}: starts with {first}, not a 3D-GAN generator or discriminator")
    expected = TORCH7_MODULES[kind]
    for i, (where, typename, name, _) in enumerate(leaves):
        if i >= len(expected) or name != expected[i]:
            wanted = expected[i] if i < len(expected) else "the end of the network"
            raise ConversionError(f"{path}: {where} is {typename}, but a 3D-GAN {kind} has {wanted} there")
    for where, _, name, module in leaves:
        if name == "LeakyReLU" and abs((_field(module, "negval") or 0) - 0.2) > 1e-7:
            raise ConversionError(f"{path}: {where} has slope {_field(module, 'negval')}, ours is 0.2")
    if len(leaves) < len(expected):
        raise ConversionError(f"{path}: ends after {len(leaves)} modules, a 3D-GAN {kind} has {len(expected)}")
    convs = [(where, module) for where, _, name, module in leaves if name.endswith("Convolution")]
    norms = [(where, module) for where, _, name, module in leaves if name.endswith("BatchNormalization")]
    first_weight = _field(convs[0][1], "weight")
    if not isinstance(first_weight, np.ndarray) or first_weight.ndim != 5:
        raise ConversionError(f"{path}: {convs[0][0]}.weight is not a 5-d tensor")
    if kind == "generator":
        latent_dim, resolution = first_weight.shape[0], first_weight.shape[1] // 8
    else:
        latent_dim, resolution = None, first_weight.shape[0]
    if resolution not in (32, 64):
        raise ConversionError(
            f"{path}: {convs[0][0]}.weight has shape {first_weight.shape}: neither a 32^3 nor a 64^3 {kind}"
        )
    specs = architecture(kind, resolution, latent_dim or 200)
    what = f"a {resolution}^3 {kind}"
    blocks, rows = [], []
    for i, spec in enumerate(specs):
        where, conv = convs[i]
        ours = keras_names(kind, i + 1, spec.normalized)
        _geometry(path, where, conv, spec)
        _check_fields(path, where, conv, TORCH7_CONV_FIELDS)
        kernel = _required(path, where, conv, "weight")
        check_shape(path, f"{where}.weight", kernel, spec.kernel_shape, what)
        rows.append((f"{where}.weight", kernel.shape, ours["kernel"]))
        bias = _field(conv, "bias")
        if isinstance(bias, np.ndarray) and bias.size:
            check_shape(path, f"{where}.bias", bias, (spec.out_channels,), what)
            if zero_biases:
                rows.append((f"{where}.bias", bias.shape, "zeroed (the authors' sampler removes conv biases)"))
                bias = None
            else:
                rows.append((f"{where}.bias", bias.shape, ours["bias"]))
        else:
            bias = None
        block = Block(kernel.astype(np.float32), bias=bias)
        if spec.normalized:
            _read_norm(path, norms[i], spec, what, block, ours, rows)
        blocks.append(block)
    return kind, resolution, latent_dim, blocks, rows


def _required(path, where, module, name):
    value = _field(module, name)
    if not isinstance(value, np.ndarray) or value.size == 0:
        raise ConversionError(f"{path}: {where}.{name} is missing")
    return value


def _read_norm(path, norm, spec, what, block, ours, rows):
    """Fills the block's BatchNorm fields; old files keep `running_std` = 1/sqrt(var + eps)."""
    where, module = norm
    known = dict(TORCH7_NORM_FIELDS, running_std="variance")
    _check_fields(path, where, module, known)
    eps = _field(module, "eps")
    block.epsilon = float(eps) if eps is not None else 1e-5
    for name, field in TORCH7_NORM_FIELDS.items():
        value = _field(module, name)
        if name == "running_var" and value is None and isinstance(_field(module, "running_std"), np.ndarray):
            name, std = "running_std", _field(module, "running_std")
            check_shape(path, f"{where}.running_std", std, (spec.out_channels,), what)
            value = 1.0 / np.square(std.astype(np.float64)) - block.epsilon
        if name in ("weight", "bias") and value is None:
            continue  # affine=false: gamma 1, beta 0
        if not isinstance(value, np.ndarray):
            raise ConversionError(f"{path}: {where}.{name} is missing")
        check_shape(path, f"{where}.{name}", value, (spec.out_channels,), what)
        setattr(block, field, value)
        target = ours[field]
        if field == "variance" and block.epsilon != 1e-5:
            target += f" (eps {block.epsilon:g} folded: var + eps - 1e-5)"
        rows.append((f"{where}.{name}", value.shape, target))

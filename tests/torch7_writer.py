"""A minimal writer of Torch7's binary serialization (torch.File:writeObject), for test fixtures.

Writes what the authors' `.t7` generators hold: numbers, strings, booleans,
tables, torch classes (`nn.Sequential`, `cudnn.VolumetricFullConvolution`, ...)
as a version string, a class name and their field table, and float tensors as
`torch.FloatTensor` (or `torch.CudaTensor`) over a `torch.FloatStorage`
(`torch.CudaStorage`), with little-endian 4-byte ints and 8-byte longs.
"""

import struct

import numpy as np

NIL, NUMBER, STRING, TABLE, TORCH, BOOLEAN = 0, 1, 2, 3, 4, 5


class TorchClass:
    """An instance of a Torch7 class: its name (`nn.ReLU`), field table and class version."""

    def __init__(self, name, fields, version=1):
        self.name, self.fields, self.version = name, fields, version


class CudaArray:
    """A float32 array written as torch.CudaTensor, as in the authors' GPU files."""

    def __init__(self, array):
        self.array = np.asarray(array, np.float32)


class _Writer:
    def __init__(self, handle):
        self.f = handle
        self.index = 0

    def int(self, value):
        self.f.write(struct.pack("<i", value))

    def long(self, value):
        self.f.write(struct.pack("<q", value))

    def string(self, text):
        data = text.encode() if isinstance(text, str) else text
        self.int(len(data))
        self.f.write(data)

    def reference(self, type_tag):
        self.int(type_tag)
        self.index += 1
        self.int(self.index)

    def header(self, name, version):
        self.reference(TORCH)
        self.string(f"V {version}")
        self.string(name)

    def tensor(self, array, cuda):
        array = np.ascontiguousarray(array, np.float32)
        self.header("torch.CudaTensor" if cuda else "torch.FloatTensor", 1)
        if array.size == 0:
            self.int(0)
            self.long(1)
            self.int(NIL)
            return
        self.int(array.ndim)
        for size in array.shape:
            self.long(size)
        for stride in array.strides:
            self.long(stride // array.itemsize)
        self.long(1)  # 1-based storage offset
        self.header("torch.CudaStorage" if cuda else "torch.FloatStorage", 1)
        self.long(array.size)
        self.f.write(array.astype("<f4").tobytes())

    def obj(self, value):
        if value is None:
            self.int(NIL)
        elif isinstance(value, bool):
            self.int(BOOLEAN)
            self.int(int(value))
        elif isinstance(value, (int, float)):
            self.int(NUMBER)
            self.f.write(struct.pack("<d", float(value)))
        elif isinstance(value, (str, bytes)):
            self.int(STRING)
            self.string(value)
        elif isinstance(value, np.ndarray):
            self.tensor(value, cuda=False)
        elif isinstance(value, CudaArray):
            self.tensor(value.array, cuda=True)
        elif isinstance(value, TorchClass):
            self.header(value.name, value.version)
            self.obj(value.fields)
        elif isinstance(value, (dict, list)):
            items = value.items() if isinstance(value, dict) else enumerate(value, start=1)
            items = list(items)
            self.reference(TABLE)
            self.int(len(items))
            for key, item in items:
                self.obj(key)
                self.obj(item)
        else:
            raise TypeError(f"cannot write {type(value).__name__}")


def write_t7(path, value):
    """Writes `value` (see the module docstring) as a binary Torch7 file."""
    with open(path, "wb") as handle:
        _Writer(handle).obj(value)

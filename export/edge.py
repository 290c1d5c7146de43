"""A keras-vaegan `.tflite` file run with ai-edge-litert alone: no TensorFlow in the process.

The kind of a file is read from its signature (see export.tflite):
generator (input `z`), encoder (outputs `mean`, `log_variance`) or reconstruct
(input `pixels`, output `occupancy`).
"""

import os

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from vaegan_utils.errors import first_line

KINDS = {  # (input names, sorted output names) -> kind
    (("z",), ("occupancy",)): "generator",
    (("pixels",), ("log_variance", "mean")): "encoder",
    (("pixels",), ("occupancy", "z")): "reconstruct",
}
BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")


class EdgeModelError(ValueError):
    """A file is not a keras-vaegan TFLite model; the message names the file."""


class EdgeModel:
    """One `.tflite` file of export.tflite: its kind, input shape, and a runner for one sample."""

    def __init__(self, path, num_threads=2):
        if not os.path.isfile(path):
            raise EdgeModelError(f"{path}: no such file")
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
            signatures = self.interpreter.get_signature_list()
        except Exception as error:  # the runtime raises ValueError or RuntimeError for damaged files
            raise EdgeModelError(f"{path}: not a TFLite model ({first_line(error, 200)})") from None
        if len(signatures) != 1:
            raise EdgeModelError(f"{path}: has {len(signatures)} signatures, a keras-vaegan TFLite file has one")
        (name, signature), = signatures.items()
        self.kind = KINDS.get((tuple(signature["inputs"]), tuple(sorted(signature["outputs"]))))
        if self.kind is None:
            raise EdgeModelError(
                f"{path}: not a keras-vaegan generator, encoder or reconstruct file "
                f"(inputs {signature['inputs']}, outputs {signature['outputs']})"
            )
        self.path = path
        self.runner = self.interpreter.get_signature_runner(name)
        self.input_name = signature["inputs"][0]
        self.input_shape = tuple(int(n) for n in self.runner.get_input_details()[self.input_name]["shape"][1:])

    def run(self, sample):
        """Outputs {name: array without the batch axis} for one input sample (no batch axis)."""
        sample = np.asarray(sample, np.float32)
        if sample.shape != self.input_shape:
            raise ValueError(f"{self.path}: expects input {self.input_shape}, got {sample.shape}")
        outputs = self.runner(**{self.input_name: sample[None]})
        return {name: value[0] for name, value in outputs.items()}


def op_table(path_or_bytes):
    """{op type: {"count": n, "dtypes": [dtype names of its computed (non-constant) inputs]}} of a .tflite file.

    Read without delegates, so every op of the file is listed as written.
    """
    source = {"model_content": path_or_bytes} if isinstance(path_or_bytes, bytes) else {"model_path": path_or_bytes}
    interpreter = Interpreter(**source, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ops = interpreter._get_ops_details()
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    computed = {index for op in ops for index in op["outputs"]}
    computed |= {detail["index"] for detail in interpreter.get_input_details()}
    table = {}
    for op in ops:
        inputs = [index for index in op["inputs"] if index >= 0]
        activations = [index for index in inputs if index in computed] or inputs[:1]
        entry = table.setdefault(op["op_name"], {"count": 0, "dtypes": set()})
        entry["count"] += 1
        entry["dtypes"].update(np.dtype(tensors[index]["dtype"]).name for index in activations)
    return {name: {"count": e["count"], "dtypes": sorted(e["dtypes"])} for name, e in sorted(table.items())}


def float_ops(table):
    """Op types of an int8 file that still compute in float32 (QUANTIZE/DEQUANTIZE at the edges aside)."""
    return [name for name, entry in table.items() if "float32" in entry["dtypes"] and name not in BOUNDARY_OPS]

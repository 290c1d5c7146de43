"""One mapping table per source: their module/parameter names and layouts -> our layers.

3DGAN-Pytorch (rimchang/3DGAN-Pytorch, src `3D_GAN/model.py`): `_G` and `_D` hold
`layer1`..`layer5`, each an `nn.Sequential` of (ConvTranspose3d | Conv3d) at
index 0 and BatchNorm3d at index 1 (layers 1-4), so the state-dict keys are
`layer{i}.0.weight`, `layer{i}.0.bias` (only with `--bias True`),
`layer{i}.1.{weight,bias,running_mean,running_var,num_batches_tracked}`.

Torch7 (zck119/3dgan-release): an `nn.Sequential` of VolumetricFullConvolution,
VolumetricBatchNormalization, ReLU (x4), VolumetricFullConvolution, Sigmoid;
the GPU files use the `cudnn.` classes of the same modules.
"""

import numpy as np

from keras_vaegan.weights import ConversionError
from keras_vaegan.weights.blocks import Block, architecture, check_shape, keras_names

# 3DGAN-Pytorch: (key template, Block field or None when not used, required).
PYTORCH_CONV = (("layer{i}.0.weight", "kernel", True), ("layer{i}.0.bias", "bias", False))
PYTORCH_NORM = (
    ("layer{i}.1.weight", "gamma", True),
    ("layer{i}.1.bias", "beta", True),
    ("layer{i}.1.running_mean", "mean", True),
    ("layer{i}.1.running_var", "variance", True),
    # Counts training steps; used by PyTorch only when momentum=None (the port uses 0.1 = our 0.9).
    ("layer{i}.1.num_batches_tracked", None, False),
)

# Torch7: the module sequence (class names without the `nn.`/`cudnn.` prefix), per kind.
TORCH7_MODULES = {
    "generator": ("VolumetricFullConvolution", "VolumetricBatchNormalization", "ReLU") * 4
    + ("VolumetricFullConvolution", "Sigmoid"),
    "discriminator": ("VolumetricConvolution", "VolumetricBatchNormalization", "LeakyReLU") * 4
    + ("VolumetricConvolution", "Sigmoid"),
}
# Torch7 fields that hold parameters or statistics -> Block fields.
TORCH7_CONV_FIELDS = {"weight": "kernel", "bias": "bias"}
TORCH7_NORM_FIELDS = {"weight": "gamma", "bias": "beta", "running_mean": "mean", "running_var": "variance"}


def pytorch_kind(state, source):
    """(kind, resolution, latent_dim) of a 3DGAN-Pytorch state dict, read from `layer1.0.weight`."""
    first = state.get("layer1.0.weight")
    if first is None:
        keys = ", ".join(list(state)[:4]) or "none"
        raise ConversionError(f"{source}: no layer1.0.weight (keys: {keys}...): not a 3DGAN-Pytorch state dict")
    shape = tuple(first.shape)
    if len(shape) != 5 or shape[2:] != (4, 4, 4):
        raise ConversionError(f"{source}: layer1.0.weight has shape {shape}, not a 4x4x4 3D convolution")
    if shape[1] == 1:
        if shape[0] not in (32, 64):
            raise ConversionError(
                f"{source}: layer1.0.weight has shape {shape}, but a discriminator needs (32, 1, 4, 4, 4) "
                "(32^3) or (64, 1, 4, 4, 4) (64^3)"
            )
        return "discriminator", shape[0], None
    if shape[1] not in (256, 512):
        raise ConversionError(
            f"{source}: layer1.0.weight has shape {shape}, but a generator needs ({shape[0]}, 256, 4, 4, 4) "
            f"(32^3) or ({shape[0]}, 512, 4, 4, 4) (64^3)"
        )
    return "generator", shape[1] // 8, shape[0]


def pytorch_to_blocks(state, kind, resolution, latent_dim, source):
    """Blocks and printed rows from a state dict; every key is used or named in a ConversionError."""
    specs = architecture(kind, resolution, latent_dim or 200)
    what = f"a {resolution}^3 {kind}"
    blocks, rows, used, missing = [], [], set(), []
    for i, spec in enumerate(specs, start=1):
        names = keras_names(kind, i, spec.normalized)
        fields = {}
        table = PYTORCH_CONV + (PYTORCH_NORM if spec.normalized else ())
        for template, field, required in table:
            key = template.format(i=i)
            if key not in state:
                if required:
                    missing.append(key)
                continue
            used.add(key)
            value = state[key]
            if field is None:
                rows.append((key, tuple(value.shape), "not used (BatchNorm step counter)"))
                continue
            shape = spec.kernel_shape if field == "kernel" else (spec.out_channels,)
            check_shape(source, key, value, shape, what)
            fields[field] = value
            rows.append((key, tuple(value.shape), names[field]))
        if "kernel" in fields:
            blocks.append(Block(**fields))
    if missing:
        raise ConversionError(f"{source}: missing {', '.join(missing)} (needed by {what})")
    unexpected = [key for key in state if key not in used]
    if unexpected:
        raise ConversionError(f"{source}: unexpected {', '.join(unexpected)} (not part of {what})")
    return blocks, rows


def blocks_to_pytorch(blocks, kind, with_bias):
    """The port's state dict (key -> numpy array) from our blocks; conv biases only `with_bias`."""
    state = {}
    for i, block in enumerate(blocks, start=1):
        state[f"layer{i}.0.weight"] = block.kernel
        if with_bias:
            out = block.kernel.shape[1] if kind == "generator" else block.kernel.shape[0]
            state[f"layer{i}.0.bias"] = block.bias if block.bias is not None else np.zeros(out, block.kernel.dtype)
        if block.gamma is not None:
            state[f"layer{i}.1.weight"] = block.gamma
            state[f"layer{i}.1.bias"] = block.beta
            state[f"layer{i}.1.running_mean"] = block.mean
            state[f"layer{i}.1.running_var"] = block.variance
            state[f"layer{i}.1.num_batches_tracked"] = np.array(0, np.int64)
    return state


"""Five convolution blocks in PyTorch/Torch7 layout, checked against and assigned to our Keras networks.

A source (Torch7 module list or PyTorch state dict) becomes a list of `Block`s;
`assign_blocks` puts them into a `Generator` or `Discriminator`, `read_blocks`
takes them out again. Channels-first (C, D, H, W) tensors map to our
channels-last grids with D, H, W -> our x, y, z (only the channel axis moves).
"""

import dataclasses

import numpy as np

from keras_vaegan.weights import ConversionError

# Our BatchNormalization's epsilon (keras_vaegan.layers.batch_norm); a source's
# epsilon is folded into the moving variance so that var + eps stays the same.
OUR_EPSILON = 1e-5
KERNEL = 4


@dataclasses.dataclass
class Block:
    """One convolution (kernel in source layout), its bias and the BatchNorm after it (None for the last)."""

    kernel: np.ndarray
    bias: np.ndarray | None = None
    gamma: np.ndarray | None = None
    beta: np.ndarray | None = None
    mean: np.ndarray | None = None
    variance: np.ndarray | None = None
    epsilon: float = OUR_EPSILON


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """What one block of ours is: channels, and the source padding equivalent to ours."""

    in_channels: int
    out_channels: int
    transposed: bool
    same_padding: bool  # Keras "same" = source padding 1; "valid" = source padding 0
    normalized: bool

    @property
    def kernel_shape(self):
        """The source layout: (in, out, k, k, k) transposed, (out, in, k, k, k) otherwise."""
        pair = (self.in_channels, self.out_channels) if self.transposed else (self.out_channels, self.in_channels)
        return pair + (KERNEL,) * 3


def architecture(kind, resolution, latent_dim=200):
    """The five LayerSpecs of our generator or discriminator (see generator.py, discriminator.py)."""
    if kind == "generator":
        widths = [latent_dim] + [resolution * 8 // 2**i for i in range(4)] + [1]
        first_same = resolution != 64
        return [
            LayerSpec(widths[i], widths[i + 1], True, first_same or i > 0, i < 4) for i in range(5)
        ]
    widths = [1] + [resolution * 2**i for i in range(4)] + [1]
    last_same = resolution != 64
    return [LayerSpec(widths[i], widths[i + 1], False, last_same or i < 4, i < 4) for i in range(5)]


def check_shape(source, name, array, shape, what):
    """ConversionError naming the tensor when `array` does not have `shape`."""
    if tuple(array.shape) != tuple(shape):
        raise ConversionError(
            f"{source}: {name} has shape {tuple(array.shape)}, but {what} needs {tuple(shape)}"
        )


def _set(variable, value):
    variable.assign(np.asarray(value, dtype=variable.dtype))


def assign_blocks(network, blocks):
    """Puts source blocks into our Keras network: kernels to channels-last, biases and epsilon folded.

    A bias before BatchNorm is exact as `moving_mean - bias` (in training BatchNorm
    removes it anyway); a source epsilon e becomes `moving_variance + e - 1e-5`.
    The last block's bias (no BatchNorm) is our conv bias, zeros when absent.
    """
    for unit, block in zip(network.blocks, blocks):
        _set(unit.conv.kernel, block.kernel.transpose(2, 3, 4, 1, 0))
        bias = block.bias if block.bias is not None else np.zeros(unit.conv.filters, "float32")
        if unit.norm is None:
            _set(unit.conv.bias, bias)
            continue
        channels = bias.shape[0]
        _set(unit.norm.gamma, block.gamma if block.gamma is not None else np.ones(channels))
        _set(unit.norm.beta, block.beta if block.beta is not None else np.zeros(channels))
        _set(unit.norm.moving_mean, block.mean.astype(np.float64) - bias)
        _set(unit.norm.moving_variance, block.variance.astype(np.float64) + block.epsilon - OUR_EPSILON)


def read_blocks(network):
    """Our network's blocks in source layout (biases of normalized blocks are None: ours have none)."""
    blocks = []
    for unit in network.blocks:
        kernel = np.asarray(unit.conv.kernel.numpy()).transpose(4, 3, 0, 1, 2)
        if unit.norm is None:
            blocks.append(Block(kernel, bias=unit.conv.bias.numpy()))
            continue
        norm = unit.norm
        blocks.append(
            Block(
                kernel,
                gamma=norm.gamma.numpy(),
                beta=norm.beta.numpy(),
                mean=norm.moving_mean.numpy(),
                variance=norm.moving_variance.numpy(),
                epsilon=norm.epsilon,
            )
        )
    return blocks


def keras_names(kind, index, normalized):
    """Our weights of block `index` (1-based), as `generator.block1.conv.kernel`-style names."""
    prefix = f"{kind}.block{index}"
    if not normalized:
        return {"kernel": f"{prefix}.conv.kernel", "bias": f"{prefix}.conv.bias"}
    return {
        "kernel": f"{prefix}.conv.kernel",
        "bias": f"{prefix}.bn.moving_mean (folded: mean - bias)",
        "gamma": f"{prefix}.bn.gamma",
        "beta": f"{prefix}.bn.beta",
        "mean": f"{prefix}.bn.moving_mean",
        "variance": f"{prefix}.bn.moving_variance",
    }

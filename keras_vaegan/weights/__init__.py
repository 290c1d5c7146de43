"""Weights from other 3D-GAN implementations: the authors' Torch7 generators and 3DGAN-Pytorch state dicts.

`blocks` is the source-neutral form (five convolution blocks in PyTorch layout)
and its assignment to our Keras networks; `torch7` and `pytorch_state` read the
files; `mapping` holds one table per source from its names to our layers;
`to_pytorch` writes a model of ours back as the port's state dicts. `averaging`
makes one model of a run's training checkpoints.
"""


class ConversionError(ValueError):
    """Weights that cannot be converted; the message names the file and the tensor or layer."""

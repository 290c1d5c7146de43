"""A `.keras` model of ours -> 3DGAN-Pytorch state dicts `G.pth` and `D.pth` (needs torch)."""

import os

import numpy as np

from keras_vaegan.weights import ConversionError
from keras_vaegan.weights.blocks import read_blocks
from keras_vaegan.weights.mapping import blocks_to_pytorch

FILES = {"generator": "G.pth", "discriminator": "D.pth"}


def load_model(path):
    """The GAN3D or VAEGAN3D in `path`, as export loads it; ConversionError otherwise."""
    from keras_vaegan.model_file import ModelFileError, load_trained_model

    try:
        return load_trained_model(path)
    except ModelFileError as error:
        raise ConversionError(str(error)) from None


def save_state_dict(state, path):
    """torch.save of name -> numpy array as tensors, to a temporary name then renamed."""
    import torch

    tensors = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in state.items()}
    temporary = os.path.join(os.path.dirname(path) or ".", f".tmp-{os.getpid()}-{os.path.basename(path)}")
    torch.save(tensors, temporary)
    os.replace(temporary, path)


def convert_to_pytorch(model_path, out_dir):
    """Writes `out_dir`/G.pth and D.pth; returns {kind: (path, state, with_bias)}.

    The port builds its convolutions without bias by default (`--bias False`);
    when our last layer's bias is not zero, every convolution gets its bias key
    (zeros before BatchNorm) and the port must be built with `--bias True`.
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ConversionError("--to pytorch: needs torch (pip install torch)") from None
    model = load_model(model_path)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise ConversionError(f"{out_dir}: cannot be written ({error.strerror or error})") from None
    written = {}
    for kind, filename in FILES.items():
        blocks = read_blocks(getattr(model, kind))
        with_bias = bool(np.any(blocks[-1].bias != 0))
        state = blocks_to_pytorch(blocks, kind, with_bias)
        path = os.path.join(out_dir, filename)
        save_state_dict(state, path)
        written[kind] = (path, state, with_bias)
    return written

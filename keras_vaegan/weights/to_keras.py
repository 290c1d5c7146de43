"""Torch7 or PyTorch weights -> a complete GAN3D `.keras` file (what export and export.infer load)."""

import dataclasses

from keras_vaegan.config import ModelConfig, TrainConfig
from keras_vaegan.models import build_model
from keras_vaegan.training import save_model_atomically
from keras_vaegan.weights import ConversionError
from keras_vaegan.weights.blocks import assign_blocks
from keras_vaegan.weights.mapping import pytorch_kind, pytorch_to_blocks
from keras_vaegan.weights.pytorch_state import load_state_dict
from keras_vaegan.weights.torch7 import read_torch7

# The authors' sampler draws z uniformly from [0, 1); 3DGAN-Pytorch from a normal distribution.
DEFAULT_PRIORS = {"torch7": "uniform", "pytorch": "normal"}


@dataclasses.dataclass
class SourceNetwork:
    """One converted network: what it is, its blocks and the rows (source name, shape, our weight)."""

    path: str
    kind: str
    resolution: int
    latent_dim: int | None
    blocks: list
    rows: list


def read_network(source, path, expected_kind, zero_biases=True):
    """The generator or discriminator in `path`; ConversionError when it is the other kind."""
    if source == "torch7":
        kind, resolution, latent_dim, blocks, rows = read_torch7(path, zero_biases)
    else:
        state = load_state_dict(path)
        kind, resolution, latent_dim = pytorch_kind(state, path)
        if kind == expected_kind:
            blocks, rows = pytorch_to_blocks(state, kind, resolution, latent_dim, path)
    if kind != expected_kind:
        reads = "reads voxels" if kind == "discriminator" else "reads latent vectors"
        raise ConversionError(
            f"{path}: is a {resolution}^3 {kind} (its first layer {reads}), given as the {expected_kind}"
        )
    return SourceNetwork(path, kind, resolution, latent_dim, blocks, rows)


def convert_to_keras(source, generator_path, out, discriminator_path=None, zero_biases=True, latent_prior=None):
    """Writes a GAN3D to `out`; returns the SourceNetworks (the discriminator None when not given)."""
    generator = read_network(source, generator_path, "generator", zero_biases)
    discriminator = None
    if discriminator_path:
        discriminator = read_network(source, discriminator_path, "discriminator", zero_biases)
        if discriminator.resolution != generator.resolution:
            raise ConversionError(
                f"{discriminator_path}: is a {discriminator.resolution}^3 discriminator, "
                f"the generator is {generator.resolution}^3"
            )
    model_config = ModelConfig(model_type="gan", resolution=generator.resolution, latent_dim=generator.latent_dim)
    train_config = TrainConfig(latent_prior=latent_prior or DEFAULT_PRIORS[source])
    model = build_model(model_config.validate(), train_config.validate())
    assign_blocks(model.generator, generator.blocks)
    if discriminator:
        assign_blocks(model.discriminator, discriminator.blocks)
    save_model_atomically(model, out)
    return generator, discriminator

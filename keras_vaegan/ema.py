"""Sampling and reconstructing from the exponential moving averages (EMA) of G's and E's weights.

The optimizers of G and E keep the averages (Keras' `use_ema`, see
models.make_optimizer). BatchNorm's moving statistics belong to the raw
weights, not to their average, so the averaged generator measures its own
("standing statistics", Brock et al. 2019): one training-mode pass over a
large batch from the prior. E is averaged with G so that the pair stays
matched (an averaged G decoding a raw E's codes reconstructed the demo's
training photos at IoU 0.56 instead of 0.69); E keeps the statistics it
measured on training photos, which it needs and the prior cannot give.
"""

import tensorflow as tf

from keras_vaegan.generator import Generator

STANDING_BATCH = 128
STANDING_SEED = -2  # (seed, -2): the prior draw that measures the statistics; gan.py never draws it


def averaged_weights(model):
    """G's weights with its trainable ones replaced by their moving averages; G itself is left as it was."""
    generator, optimizer = model.generator, model.g_optimizer
    raw = [variable.numpy() for variable in generator.trainable_variables]
    optimizer.finalize_variable_values(generator.trainable_variables)
    weights = generator.get_weights()
    for variable, value in zip(generator.trainable_variables, raw):
        variable.assign(value)
    return weights


def averaged_generator(model):
    """A new Generator holding the averaged weights and BatchNorm statistics measured on them."""
    generator = Generator.from_config({**model.generator.get_config(), "name": "averaged_generator"})
    generator.build((None, model.latent_dim))
    generator.set_weights(averaged_weights(model))
    z = model.sample_latent(STANDING_BATCH, tf.constant([model.seed, STANDING_SEED], tf.int64))
    norms = [block.norm for block in generator.blocks if block.norm is not None]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.momentum = 0.0  # the moving statistics become this batch's
    generator(z, training=True)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return generator


def use_averaged_networks(model):
    """Puts the averaged weights into `model.generator` (with their own statistics) and, in a 3D-VAE-GAN,
    into `model.encoder`, e.g. before saving."""
    model.generator.set_weights(averaged_generator(model).get_weights())
    if hasattr(model, "encoder"):
        model.e_optimizer.finalize_variable_values(model.encoder.trainable_variables)

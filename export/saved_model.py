"""SavedModel with named serving signatures: generate, sample, reconstruct, reconstruct_pixels, discriminate.

Inputs and outputs (R = resolution, S = image size, L = latent size):
  generate(z: float32 [b, L])                   -> occupancy [b, R, R, R, 1]
  sample(batch_size: int32 [], seed: int64 [])  -> occupancy, z
  reconstruct(images: string [b])               -> occupancy, z   (encoded JPEG/PNG, any size)
  reconstruct_pixels(pixels: float32 [b, S, S, 3] in [0, 1]) -> occupancy, z
  discriminate(voxels: float32 [b, R, R, R, 1]) -> probability [b, 1], logit [b, 1], features [b, F]
Occupancy is a probability per voxel, grids indexed [x, y, z] with z up. `z` of the
reconstructions is the encoder's posterior mean (no sampling at inference).
`features` are D's four intermediate feature maps, each max-pooled over space and
concatenated (F = 15 * R): a shape descriptor after the paper's, which max-pools D's
layers for a linear classifier. `serving_default` is `generate`.
"""

import keras
import tensorflow as tf

from keras_vaegan.data import decode_image
from keras_vaegan.model_file import has_encoder


def latent_spec(model):
    return tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")


def pixels_spec(model):
    return tf.TensorSpec([None, model.image_size, model.image_size, 3], tf.float32, name="pixels")


def voxels_spec(model):
    size = model.resolution
    return tf.TensorSpec([None, size, size, size, 1], tf.float32, name="voxels")


def prior_latent(model, batch_size, seed):
    """z from the model's prior for a scalar int64 seed (stateless: same seed, same z)."""
    shape = tf.stack([batch_size, model.latent_dim])
    seeds = tf.stack([seed, tf.constant(0, tf.int64)])
    if model.latent_prior == "uniform":
        return tf.random.stateless_uniform(shape, seeds)
    return tf.random.stateless_normal(shape, seeds)


def endpoints(model):
    """{signature name: (function, input signature)} for the model's sub-models."""
    generator, discriminator = model.generator, model.discriminator

    def generate(z):
        return {"occupancy": generator(z, training=False)}

    def sample(batch_size, seed):
        z = prior_latent(model, batch_size, seed)
        return {"occupancy": generator(z, training=False), "z": z}

    def discriminate(voxels):
        logit, features = discriminator(voxels, training=False, return_features=True)
        pooled = [tf.reduce_max(feature, axis=[1, 2, 3]) for feature in features]
        return {"probability": tf.sigmoid(logit), "logit": logit, "features": tf.concat(pooled, axis=-1)}

    table = {
        "generate": (generate, [latent_spec(model)]),
        "sample": (
            sample,
            [tf.TensorSpec([], tf.int32, name="batch_size"), tf.TensorSpec([], tf.int64, name="seed")],
        ),
        "discriminate": (discriminate, [voxels_spec(model)]),
    }
    if has_encoder(model):
        encoder, size = model.encoder, model.image_size

        def reconstruct_pixels(pixels):
            mean, _ = encoder(pixels, training=False)
            return {"occupancy": generator(mean, training=False), "z": mean}

        def reconstruct(images):
            pixels = tf.map_fn(
                lambda encoded: decode_image(encoded, size), images,
                fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
            )
            return reconstruct_pixels(pixels)

        table["reconstruct"] = (reconstruct, [tf.TensorSpec([None], tf.string, name="images")])
        table["reconstruct_pixels"] = (reconstruct_pixels, [pixels_spec(model)])
    return table


def write_archive(models, named_endpoints, path):
    """Writes a SavedModel at `path` with the given {name: (function, input signature)}."""
    archive = keras.export.ExportArchive()
    for model in models:
        archive.track(model)
    for name, (function, signature) in named_endpoints.items():
        archive.add_endpoint(name, function, input_signature=signature)
    archive.write_out(path, verbose=False)


def write_saved_model(model, path):
    """The serving SavedModel of a GAN3D / VAEGAN3D at `path` (a new folder)."""
    models = [model.generator, model.discriminator] + ([model.encoder] if has_encoder(model) else [])
    write_archive(models, endpoints(model), path)

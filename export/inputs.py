"""Fixed inputs of an export: latent vectors and photos for the parity check and int8 calibration."""

import numpy as np
import tensorflow as tf

from keras_vaegan import data


def prior_latents(model, count, seed):
    """`count` z from the model's prior (N(0, latent_std^2) or uniform [0, 1)), float32 (count, latent_dim)."""
    rng = np.random.default_rng(seed)
    shape = (count, model.latent_dim)
    z = rng.random(shape) if model.latent_prior == "uniform" else model.latent_std * rng.standard_normal(shape)
    return z.astype("float32")


def record_photos(data_dir, model, count):
    """The encoded photos of the first `count` records in `data_dir` (file order); raises DataError."""
    files = data.find_records(data_dir)
    data.check_records(files, model.resolution, need_images=True)
    photos = []
    for serialized in tf.data.TFRecordDataset(files).take(count):
        photos.append(data.decode_example(serialized)["image"].numpy())
    return photos


def noise_photos(image_size, count, seed):
    """`count` PNG-encoded images of uniform noise: stand-ins when no training photos are given."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (count, image_size, image_size, 3), dtype=np.uint8)
    return [tf.io.encode_png(image).numpy() for image in pixels]


def decode_photos(photos, image_size):
    """Encoded photos -> the model's image input (n, S, S, 3) float32, as in training."""
    return np.stack([data.decode_image(photo, image_size).numpy() for photo in photos])

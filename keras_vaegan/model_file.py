"""Loading a trained keras-vaegan model from its `.keras` file or a training checkpoint, with one-line errors."""

import os
import zipfile

import keras

from keras_vaegan.gan import GAN3D
from keras_vaegan.vaegan import VAEGAN3D
from vaegan_utils.errors import first_line


class ModelFileError(ValueError):
    """A model file or training checkpoint cannot be used; the message names it."""


def load_trained_model(path):
    """The GAN3D or VAEGAN3D saved at `path` (a `.keras` file written by training)."""
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a .keras file (not a zip archive)")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for damaged or foreign archives
        raise ModelFileError(f"{path}: cannot be loaded ({first_line(error, 200)})") from None
    if not isinstance(model, GAN3D):
        raise ModelFileError(f"{path}: holds a {type(model).__name__}, not a keras-vaegan 3D-GAN or 3D-VAE-GAN")
    return model


def has_encoder(model):
    """True for a 3D-VAE-GAN (it can read photos)."""
    return isinstance(model, VAEGAN3D)


def training_checkpoints(path):
    """The training checkpoints `path` names, oldest first: a prefix such as run/checkpoints/ckpt-2000, or a
    folder (every checkpoint in it); None when `path` is neither (a `.keras` file, say)."""
    if os.path.isfile(path + ".index"):
        return [path]
    if not os.path.isdir(path):
        return None
    prefixes = [name[: -len(".index")] for name in os.listdir(path) if name.endswith(".index")]
    if not prefixes:
        raise ModelFileError(f"{path}: a folder without training checkpoints (no ckpt-N.index in it)")
    return [os.path.join(path, prefix) for prefix in sorted(prefixes, key=_checkpoint_order)]


def _checkpoint_order(prefix):
    """ckpt-N by N, then by name."""
    number = prefix.rpartition("-")[2]
    return (int(number) if number.isdigit() else -1, prefix)


def restore_weights(model, prefix, model_name="the model"):
    """Loads the weights of training checkpoint `prefix` into `model` (named `model_name` in errors), which must
    be of the run's architecture; the optimizers' state in the checkpoint is left out."""
    import tensorflow as tf

    try:
        tf.train.Checkpoint(model=model).restore(prefix).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ModelFileError(f"{prefix}: its weights do not fit {model_name} ({first_line(error, 160)})") from None

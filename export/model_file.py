"""Loading a trained keras-vaegan model from its `.keras` file, with one-line errors."""

import os
import zipfile

import keras

from keras_vaegan.config import first_line
from keras_vaegan.gan import GAN3D
from keras_vaegan.vaegan import VAEGAN3D


class ExportError(ValueError):
    """An input of the export cannot be used; the message names the file or flag."""


def load_trained_model(path):
    """The GAN3D or VAEGAN3D saved at `path` (a `.keras` file written by training)."""
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ExportError(f"{path}: not a .keras file (not a zip archive)")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for damaged or foreign archives
        raise ExportError(f"{path}: cannot be loaded ({first_line(error, 200)})") from None
    if not isinstance(model, GAN3D):
        raise ExportError(f"{path}: holds a {type(model).__name__}, not a keras-vaegan 3D-GAN or 3D-VAE-GAN")
    return model


def has_encoder(model):
    """True for a 3D-VAE-GAN (it can read photos)."""
    return isinstance(model, VAEGAN3D)

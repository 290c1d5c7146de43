"""3D-GAN and 3D-VAE-GAN (Wu et al., NIPS 2016) in Keras 3.

    import keras_vaegan

    model = keras_vaegan.load_trained_model("runs/demo/model.keras")  # a VAEGAN3D (or GAN3D)
    shapes = model(model.sample_latent(4, seed=(0, 0)))                # (4, R, R, R, 1) occupancy
    shapes = model.reconstruct(photos)                                 # 3D-VAE-GAN: photos (N, S, S, 3) in [0, 1]

    model = keras_vaegan.build_model(keras_vaegan.ModelConfig(), keras_vaegan.TrainConfig())

Importing the package registers the model classes with Keras, so `keras.saving.load_model`
reads a run's `model.keras` as well. It therefore imports TensorFlow; what needs no TensorFlow
(edge inference among it) lives in the `vaegan_utils` package.
"""

from keras_vaegan.config import ConfigError, ModelConfig, TrainConfig
from keras_vaegan.gan import GAN3D
from keras_vaegan.model_file import ModelFileError, has_encoder, load_trained_model
from keras_vaegan.models import build_model
from keras_vaegan.vaegan import VAEGAN3D

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "GAN3D",
    "ModelConfig",
    "ModelFileError",
    "TrainConfig",
    "VAEGAN3D",
    "build_model",
    "has_encoder",
    "load_trained_model",
]

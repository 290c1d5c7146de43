"""3D-GAN and 3D-VAE-GAN (Wu et al., NIPS 2016) in Keras 3.

    import keras_vaegan

    model = keras_vaegan.load_trained_model("runs/demo/model.keras")  # a VAEGAN3D (or GAN3D)
    shapes = model(model.sample_latent(4, seed=(0, 0)))                # (4, R, R, R, 1) occupancy
    shapes = model.reconstruct(photos)                                 # 3D-VAE-GAN: photos (N, S, S, 3) in [0, 1]

    model = keras_vaegan.build_model(keras_vaegan.ModelConfig(), keras_vaegan.TrainConfig())

Importing the package registers the model classes with Keras, so `keras.saving.load_model` reads
a run's `model.keras` as well: at once when Keras is already imported, else right after Keras is.
The public names load on first use. So `import keras_vaegan` itself loads no TensorFlow, and the
commands in the package report a bad flag before TensorFlow starts; edge inference uses only the
TensorFlow-free `vaegan_utils`.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"
_PUBLIC = {
    "ConfigError": "keras_vaegan.config",
    "ModelConfig": "keras_vaegan.config",
    "TrainConfig": "keras_vaegan.config",
    "GAN3D": "keras_vaegan.gan",
    "VAEGAN3D": "keras_vaegan.vaegan",
    "ModelFileError": "keras_vaegan.model_file",
    "has_encoder": "keras_vaegan.model_file",
    "load_trained_model": "keras_vaegan.model_file",
    "build_model": "keras_vaegan.models",
}
__all__ = sorted(_PUBLIC)
_REGISTERING_MODULE = "keras_vaegan.models"  # imports every class saved in a model.keras


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'keras_vaegan' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `keras` as usual and, once it has run, imports the models so that Keras knows them."""

    def find_spec(self, name, path, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # one import of Keras; the real finders answer from here on
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self.loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        importlib.import_module(_REGISTERING_MODULE)


if "keras" in sys.modules:
    importlib.import_module(_REGISTERING_MODULE)
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())

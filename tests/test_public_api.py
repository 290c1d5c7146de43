"""The public Python API: `import keras_vaegan` gives the models, their configs, `build_model` and
`load_trained_model`, and makes a saved `model.keras` loadable with plain `keras.saving.load_model`."""

import subprocess
import sys

import numpy as np
import pytest

import keras_vaegan
from conftest import save_tiny_model

# Loads the model before and after `import keras_vaegan`, in a fresh process; prints the class loaded.
LOAD_IN_A_FRESH_PROCESS = r"""
import sys

import keras

try:
    keras.saving.load_model(sys.argv[1], compile=False)
    sys.exit("loaded before import keras_vaegan: this test would prove nothing")
except Exception as error:
    assert "Could not locate class" in str(error), error

import keras_vaegan

print(type(keras.saving.load_model(sys.argv[1], compile=False)).__name__)
"""


def test_keras_load_model_works_after_import_keras_vaegan(tmp_path):
    path = save_tiny_model(str(tmp_path), "vaegan")
    done = subprocess.run([sys.executable, "-c", LOAD_IN_A_FRESH_PROCESS, path], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["VAEGAN3D"]


def test_the_public_names_build_load_and_run_a_model(tmp_path):
    assert all(hasattr(keras_vaegan, name) for name in keras_vaegan.__all__)
    model = keras_vaegan.build_model(keras_vaegan.ModelConfig(model_type="gan", resolution=32, latent_dim=16),
                                     keras_vaegan.TrainConfig(batch_size=2))
    assert isinstance(model, keras_vaegan.GAN3D) and not keras_vaegan.has_encoder(model)

    model = keras_vaegan.load_trained_model(save_tiny_model(str(tmp_path), "vaegan"))
    assert isinstance(model, keras_vaegan.VAEGAN3D) and keras_vaegan.has_encoder(model)
    shapes = np.asarray(model(model.sample_latent(4, seed=(0, 0))))
    assert shapes.shape == (4, 32, 32, 32, 1) and 0 <= shapes.min() <= shapes.max() <= 1
    photos = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    assert np.asarray(model.reconstruct(photos)).shape == (2, 32, 32, 32, 1)
    with pytest.raises(keras_vaegan.ModelFileError, match="missing.keras: no such file"):
        keras_vaegan.load_trained_model(str(tmp_path / "missing.keras"))

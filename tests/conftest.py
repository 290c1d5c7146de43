"""Shared fixtures and helpers for the model, loss and training tests: tiny shapes only.

Defaults: 32^3 voxels, 32x32 images, batches of 2 (the smallest settings the
models accept), so a compiled train step traces in about a second on CPU.
"""

import gzip
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vaegan.adam import FusedAdam
from keras_vaegan.gan import GAN3D
from keras_vaegan.vaegan import VAEGAN3D

RESOLUTION = 32
IMAGE_SIZE = 32
BATCH = 2


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module, *args):
    """`python -m module args` in the repository root, TensorFlow's info logs off; the CompletedProcess."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)


def default_malloc_environment(**overrides):
    """This process's environment without the settings that choose a malloc (LD_PRELOAD,
    KERAS_VAEGAN_MALLOC), plus `overrides`: a subprocess starts on the malloc a user's would."""
    environment = {key: value for key, value in os.environ.items() if key not in ("LD_PRELOAD", "KERAS_VAEGAN_MALLOC")}
    return dict(environment, **overrides)


def the_error(result):
    """The one `error:` line of a failed run (asserting there is exactly one and no traceback)."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def run_cli(main, flag_values, argv, capsys):
    """Runs a CLI's main in this process as its console entry would; any exception escaping is a traceback
    for the user. Returns (exit code, captured output)."""
    flag_values.unparse_flags()
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr()


def in_process(main, flag_values, capsys):
    """A function that runs a CLI's main in this process on (args...) as its console entry would, and returns
    what `run_module` returns (a CompletedProcess: returncode, stdout, stderr)."""

    def run(*args):
        argv = ["command", *map(str, args)]
        code, captured = run_cli(main, flag_values, argv, capsys)
        return subprocess.CompletedProcess(argv, code or 0, captured.out, captured.err)

    return run


def assert_refused(code, captured, argv):
    """Asserts exit code 2 and exactly one `error:` line without a traceback; returns that line."""
    lines = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert code == 2, (argv, code, captured.err[-1000:])
    assert len(lines) == 1 and "Traceback" not in captured.err, (argv, captured.err[-1000:])
    return lines[0]


# ---------------------------------------------------------------- figures


def figure_cells(path, cell_size):
    """The cells of a PNG laid out by vaegan_utils.render.tile_cells (square cells, 1-pixel separators), decoded:
    a list of rows, each a list of uint8 (cell_size, cell_size, 3) arrays. Fails unless the picture is such a
    grid."""
    from PIL import Image

    picture = np.asarray(Image.open(path).convert("RGB"))
    step = cell_size + 1
    rows, columns = (picture.shape[0] + 1) // step, (picture.shape[1] + 1) // step
    assert picture.shape[:2] == (rows * step - 1, columns * step - 1), (path, picture.shape)
    return [[picture[r * step : r * step + cell_size, c * step : c * step + cell_size] for c in range(columns)]
            for r in range(rows)]


def foreground_share(cell):
    """The share of a cell's pixels that are not its white background."""
    return float((cell != 255).any(axis=-1).mean())


def distinct(cells):
    """How many of the cells differ from each other."""
    return len({cell.tobytes() for cell in cells})


# ---------------------------------------------------------------- data


def random_voxels(batch=BATCH, resolution=RESOLUTION, seed=0, fill=0.3):
    """Binary occupancy (batch, R, R, R, 1) float32, about `fill` occupied."""
    rng = np.random.default_rng(seed)
    return (rng.random((batch, resolution, resolution, resolution, 1)) < fill).astype("float32")


def random_images(batch=BATCH, image_size=IMAGE_SIZE, seed=0):
    """RGB images (batch, S, S, 3) float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    return rng.random((batch, image_size, image_size, 3)).astype("float32")


def box_voxels(resolution, low, high):
    """One solid axis-aligned box, occupied on [low, high) along every axis, as (R, R, R, 1)."""
    grid = np.zeros((resolution,) * 3 + (1,), "float32")
    grid[low[0] : high[0], low[1] : high[1], low[2] : high[2]] = 1.0
    return grid


def boxes(count, resolution=32, seed=0):
    """`count` grids, each one random solid box."""
    rng = np.random.default_rng(seed)
    grids = np.zeros((count, resolution, resolution, resolution), np.float32)
    for grid in grids:
        low = rng.integers(0, resolution // 2, 3)
        high = low + rng.integers(2, resolution // 2, 3)
        grid[low[0]:high[0], low[1]:high[1], low[2]:high[2]] = 1
    return grids


def top_minus_all(grid):
    """(x, y) of the mean of the top quarter of a shape's height minus that of the whole shape."""
    occupied = np.argwhere(grid)
    low, high = occupied[:, 2].min(), occupied[:, 2].max()
    return occupied[occupied[:, 2] >= low + 0.75 * (high - low), :2].mean(axis=0) - occupied[:, :2].mean(axis=0)


def back_side(grid):
    """The side, "+x", "-x", "+y" or "-y", the top quarter of a shape ([x, y, z], z up) leans to by more than
    half a voxel: the back of a chair, bed or sofa; None when it leans no clear way."""
    lean = top_minus_all(grid)
    axis = int(np.argmax(np.abs(lean)))
    if abs(lean[axis]) <= 0.5:
        return None
    return f"{'+' if lean[axis] > 0 else '-'}{'xy'[axis]}"


def save_npy_gz(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path, "wb") as file:
        np.save(file, array)
    return str(path)


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory):
    """A tiny synthetic TFRecord dataset (12 photos and shapes at 32^3, two shards), written once per session:
    tests only read its records (training keeps its record check in it: keras_vaegan/scan_cache.py)."""
    from data_tools.synthetic import write_synthetic_dataset

    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(str(out), resolution=32, shapes_per_class=2, views_per_shape=1, image_size=32, num_shards=2)
    return str(out)


@pytest.fixture(scope="session")
def trained_vaegan_run(tmp_path_factory, dataset_dir):
    """The folder of a tiny 3D-VAE-GAN trained 4 steps: model.keras, and checkpoints/ckpt-2 and ckpt-4, trained
    once per session: tests only read it."""
    from keras_vaegan import training
    from keras_vaegan.config import ModelConfig, TrainConfig

    model_dir = str(tmp_path_factory.mktemp("run"))
    config = TrainConfig(train_steps=4, batch_size=2, checkpoint_every=2, keep_checkpoints=5, sample_every=100,
                         log_every=1, mesh_summary_every=0, picture_size=32)
    training.train(ModelConfig(model_type="vaegan", resolution=32, latent_dim=16, image_size=32), config,
                   dataset_dir, model_dir, verbose=False)
    return model_dir


@pytest.fixture
def voxel_batch():
    return random_voxels()


@pytest.fixture
def image_batch():
    return random_images()


@pytest.fixture
def restore_dtype_policy():
    """Puts the global Keras dtype policy back, whatever a test set it to."""
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


# ---------------------------------------------------------------- models


def make_optimizer(kind="sgd", learning_rate=0.01):
    """SGD (plain, predictable updates) or Adam as training uses it (fused) with the paper's beta1 = 0.5."""
    if kind == "sgd":
        return keras.optimizers.SGD(learning_rate)
    if kind == "adam":
        return FusedAdam(learning_rate, beta_1=0.5)
    raise ValueError(kind)


def build_gan(optimizer="sgd", learning_rate=0.01, d_learning_rate=None, **kwargs):
    """A compiled 32^3 GAN3D; one optimizer kind for G and D."""
    kwargs.setdefault("resolution", RESOLUTION)
    model = GAN3D(**kwargs)
    model.compile(
        g_optimizer=make_optimizer(optimizer, learning_rate),
        d_optimizer=make_optimizer(optimizer, d_learning_rate or learning_rate),
    )
    return model


def build_vaegan(optimizer="sgd", learning_rate=0.01, d_learning_rate=None, e_learning_rate=None, **kwargs):
    """A compiled 32^3 VAEGAN3D on 32x32 images; one optimizer kind for E, G and D."""
    kwargs.setdefault("resolution", RESOLUTION)
    kwargs.setdefault("image_size", IMAGE_SIZE)
    model = VAEGAN3D(**kwargs)
    model.compile(
        g_optimizer=make_optimizer(optimizer, learning_rate),
        d_optimizer=make_optimizer(optimizer, d_learning_rate or learning_rate),
        e_optimizer=make_optimizer(optimizer, e_learning_rate or learning_rate),
    )
    return model


def train_steps(model, data, steps=1):
    """`steps` compiled train steps on the same batch; returns the history (one value per step).

    `data` is voxels, (images, voxels) or (images, voxels, class ids).
    """
    if isinstance(data, tuple) and len(data) == 3:  # Keras would take a third array for sample weights
        return model.fit(tf.data.Dataset.from_tensors(data).repeat(steps), epochs=1, verbose=0).history
    x, y = (data, None) if not isinstance(data, tuple) else data
    batch = len(y if y is not None else x)
    repeated = (np.concatenate([x] * steps), None if y is None else np.concatenate([y] * steps))
    return model.fit(*repeated, batch_size=batch, epochs=1, shuffle=False, verbose=0).history


# ---------------------------------------------------------------- weights


def snapshot(variables):
    """Copies of the variables' values (for comparing before and after a step)."""
    return [np.array(v.numpy()) for v in variables]


def changed_paths(variables, before):
    """Paths of the variables whose values differ from `before` (bitwise)."""
    return [v.path for v, old in zip(variables, before) if not np.array_equal(v.numpy(), old)]


def unchanged_paths(variables, before):
    changed = set(changed_paths(variables, before))
    return [v.path for v in variables if v.path not in changed]


# ---------------------------------------------------------------- saving


def _normalized(config):
    """A config as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(config, default=str))


def _outputs(model, inputs):
    outputs = model(inputs, training=False)
    flat = keras.tree.flatten(outputs)
    return [keras.ops.convert_to_numpy(o) for o in flat]


def run_model_saving_test(model, inputs, tmp_path, name="model"):
    """Saves `model` to a `.keras` file, loads it, and checks class, outputs, weights and config.

    Like keras-hub's helper of the same name. Returns the loaded model.
    """
    path = os.path.join(str(tmp_path), f"{name}.keras")
    expected = _outputs(model, inputs)
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert [v.path for v in loaded.weights] == [v.path for v in model.weights]
    for original, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(restored.numpy(), original.numpy(), err_msg=original.path)
    actual = _outputs(loaded, inputs)
    assert len(actual) == len(expected)
    for want, got in zip(expected, actual):
        np.testing.assert_array_equal(got, want)
    assert _normalized(loaded.get_config()) == _normalized(model.get_config())
    # The config alone rebuilds the same architecture.
    rebuilt = type(model).from_config(model.get_config())
    if not rebuilt.built:
        rebuilt.build_from_config(model.get_build_config())
    assert [(v.path, tuple(v.shape)) for v in rebuilt.weights] == [(v.path, tuple(v.shape)) for v in model.weights]
    return loaded


def by_source_id(out_dir, found):
    """The records of a converted dataset (`convert`'s result `found`), keyed by source id."""
    import tensorflow as tf

    from keras_vaegan import data

    result = {}
    for shards in found["shards"].values():
        for shard in shards:
            for serialized in tf.data.TFRecordDataset(os.path.join(out_dir, shard["file"])):
                record = data.decode_example(serialized)
                result[record["source_id"].numpy().decode()] = record
    return result


def save_tiny_model(folder, model_type):
    """A tiny untrained 32^3 model (latent 16, 32x32 photos) saved as `folder`/model.keras; returns the path.

    The last kernel is scaled up so the probabilities spread as after training, instead of sitting at ~0.5.
    """
    from keras_vaegan.config import ModelConfig, TrainConfig
    from keras_vaegan.models import build_model

    config = ModelConfig(model_type=model_type, resolution=32, latent_dim=16, image_size=32)
    model = build_model(config, TrainConfig(batch_size=2))
    last = model.generator.blocks[-1].conv
    last.kernel.assign(last.kernel.numpy() * 20)
    path = os.path.join(folder, "model.keras")
    model.save(path)
    return path

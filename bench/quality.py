"""Generation quality of 3D-GAN 32^3 on real ModelNet chairs over a fixed training budget.

    PYTHONPATH=. python -m bench.quality                        # 20 minutes of training, evaluated every 4
    PYTHONPATH=. python -m bench.quality --budget_minutes=10 --eval_every_minutes=2 --work_dir=/tmp/quality

Converts ../shared/data/modelnet10-chair-32.npy.gz with the real CLI
(`python -m data_tools modelnet`), trains on its train and val splits and
holds out its test split (the converter's split by a hash of each model's id,
about 10%). Training is one `model.fit` of the library's 3D-GAN; a callback
stops it when the training time (evaluations not counted) reaches the budget.
Every --eval_every_minutes of training, and at the end, the generator decodes
the same fixed z and keras_vaegan.evaluation.generation scores the samples
against the held-out chairs: one table row per evaluation.

Two baselines scored the same way in the same run: a random subset of the
training chairs as "samples" (the ceiling: real shapes of the same
distribution) and one shape repeated, the mean training chair thresholded so
that it keeps the mean occupied share (the floor: a collapsed generator).

Ends with `QUALITY <metric> <value>` lines for the final evaluation.
"""

import os
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from keras_vaegan import data  # noqa: E402
from keras_vaegan.config import ModelConfig, TrainConfig  # noqa: E402
from keras_vaegan.evaluation import generation  # noqa: E402
from keras_vaegan.models import build_model, set_precision  # noqa: E402
from vaegan_utils.cli import ProgressCounter, fail, parse_flags  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAIRS = os.path.join(ROOT, "..", "shared", "data", "modelnet10-chair-32.npy.gz")
RESOLUTION = 32
COLUMNS = ("coverage_iou", "mmd_iou", "coverage_chamfer", "mmd_chamfer", "one_nna_iou", "empty_fraction")
QUALITY_METRICS = COLUMNS + ("one_nna_chamfer", "full_fraction", "memorization_nn_iou")

FLAGS = flags.FLAGS
flags.DEFINE_string("input", CHAIRS, "ModelNet voxel array (.npy / .npy.gz) to convert and train on.")
flags.DEFINE_float("budget_minutes", 20.0, "Training time (evaluations not counted).")
flags.DEFINE_float("eval_every_minutes", 4.0, "Training time between evaluations.")
flags.DEFINE_integer("batch_size", 32, "Training batch size.")
flags.DEFINE_integer("samples", 100, "Generated shapes per evaluation (the same z every time).")
flags.DEFINE_integer("seed", 0, "Seed of weights, noise, data order, z and metric subsets.")
flags.DEFINE_string("work_dir", "", "Folder for the converted dataset and the final nearest-shape figure "
                    "(empty: a temporary folder, removed at the end).")
flags.DEFINE_float("generator_learning_rate", 0.0025, "Generator Adam learning rate.")
flags.DEFINE_float("discriminator_learning_rate", 1e-5, "Discriminator Adam learning rate.")
flags.DEFINE_float("d_accuracy_threshold", 0.8, "D is updated only while its accuracy is at most this.",
                   )
flags.DEFINE_enum("latent_prior", "uniform", ["uniform", "normal"], "Prior of z.")


def convert(source, out):
    """Runs the real converter CLI; returns its summary line or stops with its error."""
    command = [sys.executable, "-m", "data_tools", "modelnet", "--input", source, "--out", out]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = (result.stderr if result.returncode else result.stdout).strip().splitlines()
    if result.returncode:
        fail(f"--input: conversion failed: {lines[-1] if lines else 'exit code ' + str(result.returncode)}")
    return lines[-1] if lines else "done"


def load_split(dataset_dir, *splits):
    """All voxel grids of the given splits as a bool (N, R, R, R) array."""
    files = [path for split in splits for path in data.find_records(os.path.join(dataset_dir, split))]
    batches = data.make_dataset(files, RESOLUTION, 1, shuffle_buffer=0, repeat=False)
    return np.concatenate([batch.numpy()[..., 0] > 0.5 for batch in batches])


def floor_shape(train):
    """The mean training shape, thresholded to keep the training set's mean occupied share."""
    mean = train.mean(axis=0)
    keep = int(round(train.mean() * mean.size))
    cutoff = np.sort(mean, axis=None)[-keep]
    return mean >= cutoff


def row(label, steps, metrics, seconds):
    values = " ".join(f"{metrics[name]:>16.4f}" for name in COLUMNS)
    return f"{label:>22} {steps:>6} {values} {seconds:>7.1f}"


def header():
    names = " ".join(f"{name:>16}" for name in COLUMNS)
    return f"{'minutes':>22} {'steps':>6} {names} {'eval s':>7}"


def main(argv):
    del argv  # parsed by parse_flags in app.run
    if not os.path.isfile(FLAGS.input):
        fail(f"--input: {FLAGS.input} is not a file")
    for name in ("budget_minutes", "eval_every_minutes"):
        if FLAGS[name].value <= 0:
            fail(f"--{name}: {FLAGS[name].value} must be positive")
    for name in ("batch_size", "samples"):
        if FLAGS[name].value < 2:
            fail(f"--{name}: {FLAGS[name].value} must be at least 2")
    with tempfile.TemporaryDirectory(prefix="quality-") as temporary:
        work_dir = FLAGS.work_dir or temporary
        os.makedirs(work_dir, exist_ok=True)
        run(work_dir, keep_figure=bool(FLAGS.work_dir))
    return 0


def run(work_dir, keep_figure):
    """Converts, scores the baselines, trains and evaluates; prints the table and QUALITY lines."""
    print(f"bench.quality  {time.strftime('%Y-%m-%d %H:%M:%S')} UTC  python {sys.version.split()[0]}  "
          f"tensorflow {tf.__version__} keras {keras.__version__}  cpus {os.cpu_count()}", flush=True)
    dataset_dir = os.path.join(work_dir, "chairs-32")
    print(f"data_tools: {convert(FLAGS.input, dataset_dir)}", flush=True)
    train, held_out = load_split(dataset_dir, "train", "val"), load_split(dataset_dir, "test")
    print(f"training shapes (train + val splits): {len(train)}; held out (test split): {len(held_out)}")
    train_config = TrainConfig(
        batch_size=FLAGS.batch_size, generator_learning_rate=FLAGS.generator_learning_rate,
        discriminator_learning_rate=FLAGS.discriminator_learning_rate, adam_beta1=0.5,
        d_accuracy_threshold=FLAGS.d_accuracy_threshold, latent_prior=FLAGS.latent_prior, seed=FLAGS.seed,
    ).validate()
    model_config = ModelConfig(model_type="gan", resolution=RESOLUTION).validate()
    print(f"3D-GAN {RESOLUTION}^3, batch {train_config.batch_size}, G lr {train_config.generator_learning_rate}, "
          f"D lr {train_config.discriminator_learning_rate}, Adam beta1 0.5, D updated while accuracy <= "
          f"{train_config.d_accuracy_threshold}, z ~ {train_config.latent_prior}, float32; budget "
          f"{FLAGS.budget_minutes:g} min of training, evaluated every {FLAGS.eval_every_minutes:g} min on "
          f"{FLAGS.samples} samples from fixed z", flush=True)

    def score(samples):
        return generation.generation_metrics(samples, held_out, train, seed=FLAGS.seed)

    rng = np.random.default_rng(FLAGS.seed)
    rows = [header()]
    for label, samples in (
        ("ceiling: train subset", train[np.sort(rng.choice(len(train), FLAGS.samples, replace=False))]),
        ("floor: mean shape", np.repeat(floor_shape(train)[None], FLAGS.samples, axis=0)),
    ):
        start = time.monotonic()
        metrics = score(samples)
        rows.append(row(label, 0, metrics, time.monotonic() - start))
    print("\n".join(rows), flush=True)

    keras.utils.set_random_seed(FLAGS.seed)
    set_precision("float32")
    model = build_model(model_config, train_config)
    latent = model.sample_latent(FLAGS.samples, tf.constant([FLAGS.seed, -1], tf.int64))
    files = data.find_records(os.path.join(dataset_dir, "train")) + data.find_records(os.path.join(dataset_dir, "val"))
    dataset = data.make_dataset(files, RESOLUTION, train_config.batch_size, seed=FLAGS.seed)

    def evaluate(minutes, steps):
        start = time.monotonic()
        samples = keras.ops.convert_to_numpy(model.generator(latent, training=False))
        metrics = score(samples)
        line = row(f"{minutes:.1f}", steps, metrics, time.monotonic() - start)
        rows.append(line)
        print(line, flush=True)
        return samples, metrics

    budget = FLAGS.budget_minutes * 60
    clock = TrainingClock(budget, FLAGS.eval_every_minutes * 60, evaluate)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")  # the dataset shuffles itself
        model.fit(dataset, steps_per_epoch=10**9, epochs=1, verbose=0, callbacks=[clock])
    samples, metrics = evaluate(clock.trained / 60, clock.steps)
    if keep_figure:
        figure = os.path.join(work_dir, "quality_nearest.png")
        generation.write_nearest_figure(samples, train, figure, count=8)
        print(f"wrote {figure}")
    print("\nAll rows (minutes and steps of training; eval s: generating and scoring, not counted as training):")
    print("\n".join(rows))
    print(f"training metrics, means over all steps: {', '.join(f'{k} {v:.4g}' for k, v in clock.logs.items())}")
    for name in QUALITY_METRICS:
        print(f"QUALITY {name} {metrics[name]:.4f}")


class TrainingClock(keras.callbacks.Callback):
    """Counts the time of `fit` less the evaluations', evaluates at every interval, stops at the budget."""

    def __init__(self, budget, interval, evaluate):
        super().__init__()
        self.budget, self.interval, self.evaluate = budget, interval, evaluate
        self.trained, self.steps, self.next_eval, self.logs = 0.0, 0, interval, {}
        self.progress = ProgressCounter("training", "s")
        self.start, self.evaluating = None, 0.0

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.trained = time.monotonic() - self.start - self.evaluating
        self.steps += 1
        self.logs = {key: float(value) for key, value in (logs or {}).items()}
        self.progress(min(int(self.trained), int(self.budget)), int(self.budget))
        if self.trained >= self.budget:
            self.model.stop_training = True
        elif self.trained >= self.next_eval:
            started = time.monotonic()
            self.evaluate(self.trained / 60, self.steps)
            self.evaluating += time.monotonic() - started
            self.next_eval += self.interval


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: parse_flags(FLAGS, argv))

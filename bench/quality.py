"""Generation quality of 3D-GAN on real ModelNet shapes over a fixed training budget.

    PYTHONPATH=. python -m bench.quality                                   # configs/gan_32.flags, 30 minutes
    PYTHONPATH=. python -m bench.quality --flagfile=configs/gan_64_paper.flags --resolution=32 \\
        --budget_minutes=10 --eval_every_minutes=2 --work_dir=/tmp/quality --seed=1   # the paper's settings

Reads the shapes of one class (`--class_name`) from `--input`: a labelled
`.npz` (`voxels`/`labels`/`class_names`, default the ModelNet10 training split
at 32^3) or an unlabelled `.npy`/`.npy.gz` array. About 10% of them, chosen by
a hash of their index, are held out; the generator never sees them. Training
is one `model.fit` of the library's 3D-GAN with the settings of `--flagfile`
(train.py's flags; any of them can be given after it); a callback stops it
when the training time (evaluations not counted) reaches the budget or the
steps reach --train_steps, whichever comes first. Every
--eval_every_minutes of training, and at the end, the generator (its moving
average when the flagfile sets --ema_momentum) decodes the same fixed z and
keras_vaegan.evaluation.generation scores the samples against the held-out
shapes, and against `--heldout` (shapes of another file) when given.

Two baselines scored the same way in the same run: a random subset of the
training shapes as "samples" (the ceiling: real shapes of the same
distribution) and one shape repeated, the mean training shape thresholded so
that it keeps the mean occupied share (the floor: a collapsed generator).

Ends with `QUALITY <metric> <value>` lines for the final evaluation against
the held-out split and `QUALITY heldout_<metric> <value>` against --heldout.
With --work_dir it keeps `model.keras`, `quality.json` (every evaluation, and the two baselines) and
`quality_nearest.png` (samples beside their nearest training shapes).
"""

import hashlib
import json
import os
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from keras_vaegan import distribute, ema, training  # noqa: E402
from keras_vaegan.config import ModelConfig, TrainConfig, validate_all  # noqa: E402
from keras_vaegan.evaluation import generation  # noqa: E402
from keras_vaegan.models import build_model, set_precision  # noqa: E402
from vaegan_utils import readers  # noqa: E402
from vaegan_utils.cli import ProgressCounter, config_from_flags, define_config_flags, fail, parse_flags  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELNET = os.path.join(ROOT, "..", "shared", "data", "modelnet10-32-train.npz")
DEFAULT_FLAGFILE = os.path.join(ROOT, "configs", "gan_32.flags")
HELD_OUT_PERCENT = 10
COLUMNS = ("coverage_iou", "mmd_iou", "coverage_chamfer", "mmd_chamfer", "one_nna_iou", "empty_fraction")
QUALITY_METRICS = COLUMNS + ("one_nna_chamfer", "full_fraction", "memorization_nn_iou")

FLAGS = flags.FlagValues()
define_config_flags(FLAGS, ModelConfig)  # train.py's settings, so that its flagfiles apply
define_config_flags(FLAGS, TrainConfig)
flags.DEFINE_string("input", MODELNET, "Voxel shapes to train on and hold out from: a labelled .npz "
                    "(voxels/labels/class_names) or a .npy/.npy.gz array.", flag_values=FLAGS)
flags.DEFINE_string("class_name", "chair", "The class of a labelled .npz to use (unlabelled arrays are one class).",
                    flag_values=FLAGS)
flags.DEFINE_string("heldout", "", "Another voxel file (same formats, same class) to score the samples against.",
                    flag_values=FLAGS)
flags.DEFINE_float("budget_minutes", 30.0, "Training time (evaluations not counted).", flag_values=FLAGS)
flags.DEFINE_float("eval_every_minutes", 5.0, "Training time between evaluations.", flag_values=FLAGS)
flags.DEFINE_integer("samples", 100, "Generated shapes per evaluation (the same z every time).", flag_values=FLAGS)
flags.DEFINE_string("work_dir", "", "Folder for model.keras, quality.json and the nearest-shape figure "
                    "(empty: nothing kept).", flag_values=FLAGS)


def read_shapes(path, class_name, flag):
    """The bool (N, R, R, R) grids of one class of a voxel file; one `error:` line naming it otherwise."""
    if not os.path.isfile(path):
        fail(f"--{flag}: {path} is not a file")
    try:
        if not path.endswith(".npz"):
            return readers.read_voxel_array(path)
        grids, labels, class_names = readers.read_labelled_voxels(path)
    except readers.BadFile as error:
        fail(str(error))
    if class_name not in class_names:
        fail(f"{path}: no class {class_name!r} (--class_name); it holds {', '.join(class_names)}")
    return grids[labels == class_names.index(class_name)]


def held_out(count):
    """A bool mask of the shapes held out: about HELD_OUT_PERCENT % of indices, by hash."""
    digests = (hashlib.sha256(f"shape/{i}".encode()).digest() for i in range(count))
    return [int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT for digest in digests]


def floor_shape(shapes):
    """The mean training shape, thresholded to keep the training set's mean occupied share."""
    mean = shapes.mean(axis=0)
    keep = int(round(shapes.mean() * mean.size))
    cutoff = np.sort(mean, axis=None)[-keep]
    return mean >= cutoff


def describe(model_config, train_config):
    """The settings that decide what is learned, on one line."""
    t = train_config
    gate = f", D gate <= {t.d_accuracy_threshold:g}" if t.d_accuracy_threshold < 1 else ""
    prior = f"N(0, {t.latent_std:g}^2)" if t.latent_prior == "normal" else "U[0, 1)"
    extras = [f"{name} {getattr(t, name):g}" for name in ("gradient_penalty", "instance_noise", "label_smoothing",
                                                         "ema_momentum") if getattr(t, name)]
    return (f"3D-GAN {model_config.resolution}^3, D norm {model_config.discriminator_norm}, {t.gan_loss} loss{gate}, "
            f"batch {t.batch_size}, G lr {t.generator_learning_rate:g}, D lr {t.discriminator_learning_rate:g}, "
            f"Adam beta1 {t.adam_beta1:g}, z ~ {prior}, {t.precision}" + "".join(f", {e}" for e in extras))


def row(label, steps, metrics, seconds):
    values = " ".join(f"{metrics[name]:>16.4f}" for name in COLUMNS)
    return f"{label:>26} {steps:>6} {values} {seconds:>7.1f}"


def header():
    names = " ".join(f"{name:>16}" for name in COLUMNS)
    return f"{'minutes (held-out set)':>26} {'steps':>6} {names} {'eval s':>7}"


def main(argv):
    if not any(arg.startswith("--flagfile") for arg in argv[1:]):
        argv = argv[:1] + [f"--flagfile={DEFAULT_FLAGFILE}"] + argv[1:]
    parse_flags(FLAGS, argv, __doc__)
    try:
        model_config, train_config = validate_all(config_from_flags(FLAGS, ModelConfig),
                                                  config_from_flags(FLAGS, TrainConfig))
    except ValueError as error:
        fail(f"--{error}")
    distribute.set_inter_op_threads(train_config)  # as training sets it, before TensorFlow runs
    if model_config.model_type != "gan":
        fail(f"--model_type: {model_config.model_type}; bench.quality trains 3D-GAN (--model_type=gan)")
    for name in ("budget_minutes", "eval_every_minutes"):
        if FLAGS[name].value <= 0:
            fail(f"--{name}: {FLAGS[name].value} must be positive")
    for name in ("batch_size", "samples"):
        if FLAGS[name].value < 2:
            fail(f"--{name}: {FLAGS[name].value} must be at least 2")
    if FLAGS.work_dir and not os.path.isdir(os.path.dirname(os.path.abspath(FLAGS.work_dir))):
        fail(f"--work_dir: the folder {os.path.dirname(os.path.abspath(FLAGS.work_dir))} does not exist")
    shapes = read_shapes(FLAGS.input, FLAGS.class_name, "input")
    extra = read_shapes(FLAGS.heldout, FLAGS.class_name, "heldout") if FLAGS.heldout else None
    for path, grids in ((FLAGS.input, shapes), (FLAGS.heldout, extra)):
        if grids is not None and grids.shape[1] != model_config.resolution:
            fail(f"{path}: grids of {grids.shape[1]}^3, but the model is {model_config.resolution}^3 (--resolution)")
    if len(shapes) < 2 * FLAGS.batch_size:
        fail(f"{FLAGS.input}: {len(shapes)} shapes of {FLAGS.class_name}, fewer than two batches")
    with tempfile.TemporaryDirectory(prefix="quality-") as temporary:
        work_dir = FLAGS.work_dir or temporary
        os.makedirs(work_dir, exist_ok=True)
        run(shapes, extra, model_config, train_config, work_dir, keep=bool(FLAGS.work_dir))
    return 0


def run(shapes, extra, model_config, train_config, work_dir, keep):
    """Scores the baselines, trains and evaluates; prints the table and QUALITY lines."""
    print(f"bench.quality  {time.strftime('%Y-%m-%d %H:%M:%S')} UTC  python {sys.version.split()[0]}  "
          f"tensorflow {tf.__version__} keras {keras.__version__}  cpus {os.cpu_count()}", flush=True)
    mask = np.array(held_out(len(shapes)))
    train_shapes, held = shapes[~mask], shapes[mask]
    sets = {"split": held} if extra is None else {"split": held, "heldout": extra}
    print(f"{FLAGS.input} ({FLAGS.class_name}): {len(train_shapes)} training shapes, {len(held)} held out by hash"
          + (f"; --heldout {FLAGS.heldout}: {len(extra)} shapes" if extra is not None else ""))
    print(f"settings: {describe(model_config, train_config)}; budget {FLAGS.budget_minutes:g} min of "
          f"training or {train_config.train_steps} steps, whichever comes first, evaluated every "
          f"{FLAGS.eval_every_minutes:g} min on {FLAGS.samples} samples from fixed z",
          flush=True)

    def score(samples, reference):
        return generation.generation_metrics(samples, reference, train_shapes, seed=train_config.seed)

    rng = np.random.default_rng(train_config.seed)
    ceiling = train_shapes[np.sort(rng.choice(len(train_shapes), FLAGS.samples, replace=False))]
    floor = np.repeat(floor_shape(train_shapes)[None], FLAGS.samples, axis=0)
    rows, history, references = [header()], [], {}
    for name, reference in sets.items():
        for kind, label, samples in (("ceiling", f"ceiling: train subset ({name})", ceiling),
                                     ("floor", f"floor: mean shape ({name})", floor)):
            start = time.monotonic()
            references.setdefault(name, {})[kind] = score(samples, reference)
            rows.append(row(label, 0, references[name][kind], time.monotonic() - start))
    print("\n".join(rows), flush=True)

    training.seed_process(train_config)
    set_precision(train_config.precision)
    model = build_model(model_config, train_config)
    latent = model.sample_latent(FLAGS.samples, tf.constant([train_config.seed, -1], tf.int64))
    dataset = (tf.data.Dataset.from_tensor_slices(train_shapes[..., None].astype(np.float32))
               .shuffle(len(train_shapes), seed=train_config.seed).repeat()
               .batch(train_config.batch_size, drop_remainder=True).prefetch(2))

    def evaluate(minutes, steps):
        start = time.monotonic()
        generators = {"": model.generator}
        if train_config.ema_momentum:  # the averaged G is what is kept; the raw one shows what averaging buys
            generators = {"": ema.averaged_generator(model), "raw_G": model.generator}
        results = {}
        for which, generator in generators.items():
            samples = keras.ops.convert_to_numpy(generator(latent, training=False))
            scored = {name: score(samples, reference) for name, reference in sets.items()}
            for name, metrics in scored.items():
                line = row(f"{minutes:.1f} ({name}{', ' + which if which else ''})", steps, metrics,
                           time.monotonic() - start)
                rows.append(line)
                print(line, flush=True)
            results.update({f"{name}{'_' + which if which else ''}": m for name, m in scored.items()})
            if not which:
                kept = samples, scored
        history.append({"minutes": minutes, "steps": steps, **results})
        return kept

    clock = TrainingClock(FLAGS.budget_minutes * 60, FLAGS.eval_every_minutes * 60, evaluate, train_config.train_steps)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")  # the dataset shuffles itself
        model.fit(dataset, steps_per_epoch=10**9, epochs=1, verbose=0, callbacks=[clock])
    samples, results = evaluate(clock.trained / 60, clock.steps)
    if keep:
        if train_config.ema_momentum:
            ema.use_averaged_networks(model)
        model.save(os.path.join(work_dir, "model.keras"))
        generation.write_nearest_figure(samples, train_shapes, os.path.join(work_dir, "quality_nearest.png"), count=8)
        with open(os.path.join(work_dir, "quality.json"), "w") as handle:
            json.dump({"settings": describe(model_config, train_config), "history": history,
                       "references": references}, handle)
        print(f"wrote model.keras, quality.json and quality_nearest.png in {work_dir}")
    print("\nAll rows (minutes and steps of training; eval s: generating and scoring, not counted as training):")
    print("\n".join(rows))
    print(f"training metrics, means over all steps: {', '.join(f'{k} {v:.4g}' for k, v in clock.logs.items())}")
    for name, metrics in results.items():
        prefix = "" if name == "split" else f"{name}_"
        for metric in QUALITY_METRICS:
            print(f"QUALITY {prefix}{metric} {metrics[metric]:.4f}")


class TrainingClock(keras.callbacks.Callback):
    """Counts the time of `fit` less the evaluations', evaluates at every interval, stops at the budget (seconds)
    or after `max_steps` steps, whichever comes first."""

    def __init__(self, budget, interval, evaluate, max_steps):
        super().__init__()
        self.budget, self.interval, self.evaluate, self.max_steps = budget, interval, evaluate, max_steps
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
        if self.trained >= self.budget or self.steps >= self.max_steps:
            self.model.stop_training = True
        elif self.trained >= self.next_eval:
            started = time.monotonic()
            self.evaluate(self.trained / 60, self.steps)
            self.evaluating += time.monotonic() - started
            self.next_eval += self.interval


if __name__ == "__main__":
    sys.exit(main(sys.argv))

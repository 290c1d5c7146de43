"""The training loop: data checks, checkpoints and resume, pictures, final model.

`train()` is what `train.py` calls; it is importable and testable without flags.
"""

import dataclasses
import glob
import json
import os
import shutil
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_vaegan import callbacks, data, distribute, ema, run_lock, scan_cache
from keras_vaegan.config import ConfigError
from keras_vaegan.models import build_model, set_precision
from vaegan_utils.allocator import jemalloc_loaded
from vaegan_utils.errors import first_line
from vaegan_utils.files import write_bytes_atomically

RUN_FILE = "run.json"
FINAL_MODEL = "model.keras"
SAMPLE_COUNT = 16
RECONSTRUCTION_COUNT = 8


class CheckpointError(ValueError):
    """A model directory or checkpoint does not fit the requested model."""


class Stopped(Exception):
    """Training stopped on SIGTERM/SIGINT after writing a checkpoint; the message says where."""


def seed_process(train_config):
    """Seeds Python, NumPy and TensorFlow with `train_config.seed`; with `deterministic`, also turns on
    TensorFlow's op determinism (deterministic kernels only, tf.data in order). Both last for the whole
    process: commands call it once, before building a model."""
    keras.utils.set_random_seed(train_config.seed)
    if train_config.deterministic:
        tf.config.experimental.enable_op_determinism()


def save_model_atomically(model, path):
    """`model.save` to a temporary `.keras` name, then rename: never a half-written model."""
    temporary = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.path.basename(path)}")
    model.save(temporary)
    os.replace(temporary, path)


def _describe(architecture):
    return ", ".join(f"{key}={value}" for key, value in sorted(architecture.items()) if value is not None)


def check_model_dir(model_dir, model_config, train_config, write):
    """Refuses a model directory trained with another architecture; records this run's configs."""
    path = os.path.join(model_dir, RUN_FILE)
    wanted = model_config.architecture()
    if os.path.exists(path):
        try:
            with open(path) as handle:
                stored = json.load(handle)["architecture"]
        except (OSError, ValueError, KeyError) as error:
            raise CheckpointError(f"{path}: unreadable run description ({error})") from None
        if stored != wanted:
            raise CheckpointError(
                f"{model_dir}: holds a model with {_describe(stored)}, but this run asks for "
                f"{_describe(wanted)}; use another --model_dir"
            )
    if write:
        os.makedirs(model_dir, exist_ok=True)
        run = {
            "architecture": wanted,
            "model": dataclasses.asdict(model_config),
            "train": dataclasses.asdict(train_config),
        }
        write_bytes_atomically(path, json.dumps(run, indent=2, sort_keys=True).encode())


def optimizers_of(model):
    """The model's optimizers by attribute name, as the checkpoint stores them."""
    names = ("g_optimizer", "d_optimizer", "e_optimizer")
    return {name: getattr(model, name) for name in names if hasattr(model, name)}


def restore_latest(checkpoint, manager, train_config):
    """Restores the newest checkpoint, if any; a mismatch is a CheckpointError, never a partial load.

    The checkpoint also holds G's and E's Adam rates; they are set back to
    `train_config`'s, so a resumed run uses the rates it is given (D's rate is
    a schedule, never restored).
    """
    latest = manager.latest_checkpoint
    if latest is None:
        return None  # a fresh model already has the configured rates
    try:
        checkpoint.restore(latest).assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as error:
        raise CheckpointError(f"{latest}: does not fit this model ({first_line(error, 300)})") from None
    rates = {"g_optimizer": train_config.generator_learning_rate, "e_optimizer": train_config.encoder_learning_rate}
    for name, optimizer in optimizers_of(checkpoint.model).items():
        if name in rates:
            optimizer.learning_rate = rates[name]
    return latest


def read_pretrained(path):
    """The generator and discriminator weights of a saved 3D-GAN or 3D-VAE-GAN `.keras` file."""
    if not os.path.isfile(path):
        raise ConfigError(f"init_from: {path} is not a file")
    try:
        source = keras.saving.load_model(path)
        return {name: getattr(source, name).get_weights() for name in ("generator", "discriminator")}
    except Exception as error:  # Keras raises anything from a damaged zip: BadZipFile, KeyError, EOFError, ...
        raise ConfigError(f"init_from: {path} is not a readable 3D-GAN ({first_line(error, 300)})") from None


def load_pretrained(model, weights, path):
    """Sets the generator's and discriminator's weights read by `read_pretrained` from `path`."""
    try:
        for name, values in weights.items():
            getattr(model, name).set_weights(values)
    except ValueError as error:
        raise ConfigError(f"init_from: {path} does not hold a matching 3D-GAN ({first_line(error, 300)})") from None


def stage_at(step, train_config, model_config):
    """What a step trains: "joint", or "gan" then "encoder" for the separate schedule."""
    if model_config.model_type == "gan":
        return "gan"
    if train_config.schedule == "joint":
        return "joint"
    return "gan" if step < train_config.pretrain_steps else "encoder"


def chunk_end(step, train_config, model_config):
    """Where the current run of steps stops: a checkpoint boundary, a stage change or the end."""
    every = train_config.checkpoint_every
    end = min((step // every + 1) * every, train_config.train_steps)
    if model_config.model_type == "vaegan" and train_config.schedule == "separate" and step < train_config.pretrain_steps:
        end = min(end, train_config.pretrain_steps)
    return end


def chunk_start(step, train_config, model_config):
    """Where the uninterrupted run's chunk holding `step` began (the inverse of `chunk_end`)."""
    start = step // train_config.checkpoint_every * train_config.checkpoint_every
    separate = model_config.model_type == "vaegan" and train_config.schedule == "separate"
    if separate and step >= train_config.pretrain_steps:
        start = max(start, train_config.pretrain_steps)
    return start


def dataset_from(step, files, model_config, train_config, exclude=None):
    """The batches of steps `step`, `step` + 1, ...: those an uninterrupted run trains on there.

    Each chunk's order is seeded by the step it starts at; a run resumed in the
    middle of a chunk (after a stop by signal) skips the batches already used.
    """
    start = chunk_start(step, train_config, model_config)
    image_size = model_config.image_size if model_config.model_type == "vaegan" else None
    dataset = data.make_dataset(
        files, model_config.resolution, train_config.batch_size, image_size,
        seed=train_config.seed * 1_000_003 + start, exclude=exclude, augment=train_config.augment_images,
        class_ids=image_size is not None and train_config.class_weight > 0,
    )
    return dataset.skip(step - start)


def remove_leftovers(model_dir):
    """Deletes the temporary files a killed run can leave (never loaded: they are written, then renamed)."""
    patterns = (
        f".tmp-*-{FINAL_MODEL}", f"{RUN_FILE}.tmp-*", os.path.join("checkpoints", "*_temp"),
        os.path.join("checkpoints", "checkpoint.tmp*"),
    )
    for pattern in patterns:
        for path in glob.glob(os.path.join(glob.escape(model_dir), pattern)):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)


def _reconstruction_images(files, model_config, exclude=None):
    """A fixed set of photos, in file order, shown beside their reconstructions."""
    dataset = data.make_dataset(
        files, model_config.resolution, 1, model_config.image_size, shuffle_buffer=0, repeat=False, exclude=exclude
    ).take(RECONSTRUCTION_COUNT)
    return np.concatenate([keras.ops.convert_to_numpy(images) for images, _ in dataset])


def train(model_config, train_config, data_dir, model_dir, verbose=True):
    """Trains (or resumes) a model in `model_dir`; returns the path of the final `.keras` file.

    Raises ConfigError, data.DataError, CheckpointError, run_lock.LockError or
    callbacks.NonFiniteLoss with a one-line message; the last good checkpoint is
    never touched by a failure. SIGTERM or SIGINT end the run after the current
    step with a checkpoint there, raising Stopped.
    """
    model_config.validate()
    train_config.validate()
    distribute.set_inter_op_threads(train_config)  # before the record scan runs TensorFlow
    is_vaegan = model_config.model_type == "vaegan"
    if train_config.class_weight and not is_vaegan:
        raise ConfigError("class_weight: the class loss reads the image encoder's code, which only 3D-VAE-GAN has")
    files = data.find_records(data_dir)
    scan = scan_cache.scan_records(
        data_dir, files, model_config.resolution, is_vaegan, train_config.bad_records == "skip", verbose
    )
    if scan.bad and verbose:
        print(f"{data_dir}: left out {len(scan.bad)} bad records of {len(scan.bad) + scan.good}, first "
              f"{scan.bad[0][0]}: record {scan.bad[0][1]}: {scan.bad[0][2]}")
    if train_config.class_weight and not scan.num_classes:
        raise ConfigError(f"class_weight: no record of {data_dir} names its class (class_id), so there is nothing "
                          "for the class loss to learn")
    pretrained = read_pretrained(train_config.init_from) if train_config.init_from else None
    chief = distribute.is_chief()
    strategy = distribute.make_strategy(train_config.distribution_strategy)
    lock = run_lock.RunLock(model_dir)
    if chief:
        os.makedirs(model_dir, exist_ok=True)
        lock.acquire()
    try:
        if lock.stale and verbose:
            print(f"{model_dir}: taking over from {lock.stale}, which ended without releasing it")
        if chief:
            remove_leftovers(model_dir)
        with callbacks.StopOnSignal() as stop:
            return _train(
                model_config, train_config, files, scan, pretrained, model_dir, chief, strategy, stop, verbose
            )
    finally:
        lock.release()


def _train(model_config, train_config, files, scan, pretrained, model_dir, chief, strategy, stop, verbose):
    is_vaegan = model_config.model_type == "vaegan"
    exclude = scan.exclusions()
    check_model_dir(model_dir, model_config, train_config, write=chief)
    set_precision(train_config.precision)
    with strategy.scope():
        model = build_model(model_config, train_config, scan.num_classes)
    checkpoint = tf.train.Checkpoint(model=model, **optimizers_of(model))
    checkpoint_dir = os.path.join(model_dir, "checkpoints")
    if not chief:
        checkpoint_dir = os.path.join(model_dir, f".worker-{os.getpid()}-checkpoints")
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=train_config.keep_checkpoints)
    restored = restore_latest(checkpoint, manager, train_config)
    step = callbacks.current_step(model)
    final_path = os.path.join(model_dir, FINAL_MODEL)
    if restored and step >= train_config.train_steps and os.path.exists(final_path):
        if verbose:
            print(f"{model_dir}: already trained to step {step}; nothing to do")
        return final_path
    if restored is None and pretrained:
        load_pretrained(model, pretrained, train_config.init_from)
    if verbose:
        malloc = "jemalloc" if jemalloc_loaded() else "glibc's malloc"
        print(f"{'resuming from ' + restored if restored else 'starting'} at step {step} of {train_config.train_steps}"
              f", on {malloc}")
    if train_config.on_nonfinite == "skip" and restored is None:
        manager.save(checkpoint_number=step)  # where a non-finite step before the first checkpoint goes back to

    writer = tf.summary.create_file_writer(os.path.join(model_dir, "logs")) if chief else tf.summary.create_noop_writer()
    guard = callbacks.NaNGuard()
    guard.set_model(model)
    run_callbacks = [guard, stop, callbacks.ScalarSummaries(writer, train_config.log_every)]
    if verbose:
        run_callbacks.append(callbacks.ProgressBar(train_config.train_steps, step))
    pictures = None
    if chief:
        latent = model.sample_latent(SAMPLE_COUNT, tf.constant([train_config.seed, -1], tf.int64))
        images = _reconstruction_images(files, model_config, exclude) if is_vaegan else None
        pictures = callbacks.SamplePictures(model_dir, writer, train_config.sample_every, latent, images,
                                            train_config.picture_size)
        pictures.set_model(model)  # `fit` sets it too, but a finished run resumed to save runs no `fit`
        run_callbacks.append(pictures)
        if train_config.mesh_summary_every:
            run_callbacks.append(callbacks.MeshSummaries(writer, train_config.mesh_summary_every, latent, images))

    skipped = set()  # steps whose update is dropped (--on_nonfinite=skip): step k is the one from k to k + 1
    while step < train_config.train_steps and not stop.signal_name:
        boundary = chunk_end(step, train_config, model_config)
        if step in skipped:
            model.step.assign_add(1)
        else:
            if is_vaegan:
                model.stage = stage_at(step, train_config, model_config)
            end = min([boundary] + [bad for bad in skipped if bad > step])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*shuffle=True.*")  # our datasets shuffle themselves
                model.fit(
                    dataset_from(step, files, model_config, train_config, exclude),
                    steps_per_epoch=end - step, epochs=1, verbose=0, callbacks=run_callbacks,
                )
        if not guard.failure and callbacks.current_step(model) == boundary:
            guard.check_weights()  # a checkpoint is written only of finite weights
        if guard.failure:
            _skip_or_stop(guard, skipped, train_config, manager)
            restore_latest(checkpoint, manager, train_config)
        elif callbacks.current_step(model) == boundary:
            manager.save(checkpoint_number=boundary)
        step = callbacks.current_step(model)
    writer.flush()
    if stop.signal_name:
        if not (manager.latest_checkpoint or "").endswith(f"-{step}"):
            manager.save(checkpoint_number=step)
        raise Stopped(f"stopped by {stop.signal_name} at step {step}; checkpoint written")
    if skipped and verbose:
        steps = ", ".join(str(bad + 1) for bad in sorted(skipped))
        print(f"\nskipped the updates of {len(skipped)} non-finite steps: {steps}")
    if chief:
        if train_config.ema_momentum:
            ema.use_averaged_networks(model)  # the checkpoints keep the raw weights to resume from
        pictures.write(step)
        save_model_atomically(model, final_path)
        if verbose:
            print(f"\nsaved {final_path}")
    else:
        tf.io.gfile.rmtree(checkpoint_dir)
    return final_path


def _skip_or_stop(guard, skipped, train_config, manager):
    """After a non-finite step: raises NonFiniteLoss (stop, or too many in a row), else marks it skipped."""
    failure, bad = guard.failure, guard.step - 1
    guard.failure = guard.step = None
    kept = manager.latest_checkpoint or "none written yet"
    if train_config.on_nonfinite == "stop":
        raise callbacks.NonFiniteLoss(f"{failure}; training stopped, last good checkpoint: {kept}")
    skipped.add(bad)
    in_a_row = 1
    while bad - in_a_row in skipped:
        in_a_row += 1
    if in_a_row > train_config.max_skipped_in_a_row:
        raise callbacks.NonFiniteLoss(
            f"{failure}; {in_a_row} non-finite steps in a row (--max_skipped_in_a_row="
            f"{train_config.max_skipped_in_a_row}), training stopped, last good checkpoint: {kept}"
        )

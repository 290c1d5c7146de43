"""The training loop: data checks, checkpoints and resume, pictures, final model.

`train()` is what `train.py` calls; it is importable and testable without flags.
"""

import dataclasses
import json
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_vaegan import callbacks, data, distribute
from keras_vaegan.config import ConfigError, first_line
from keras_vaegan.files import write_bytes_atomically
from keras_vaegan.models import build_model, set_precision

RUN_FILE = "run.json"
FINAL_MODEL = "model.keras"
SAMPLE_COUNT = 16
RECONSTRUCTION_COUNT = 8


class CheckpointError(ValueError):
    """A model directory or checkpoint does not fit the requested model."""


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


def restore_latest(checkpoint, manager):
    """Restores the newest checkpoint, if any; a mismatch is a CheckpointError, never a partial load."""
    latest = manager.latest_checkpoint
    if latest is None:
        return None
    try:
        checkpoint.restore(latest).assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as error:
        raise CheckpointError(f"{latest}: does not fit this model ({first_line(error, 300)})") from None
    return latest


def use_configured_learning_rates(model, train_config):
    """Sets G's and E's Adam rates from `train_config`: a checkpoint restores them with the
    weights, and a resumed run must use the rates it is given (D's rate is a schedule, not restored)."""
    rates = {"g_optimizer": train_config.generator_learning_rate, "e_optimizer": train_config.encoder_learning_rate}
    for name, optimizer in optimizers_of(model).items():
        if name in rates:
            optimizer.learning_rate = rates[name]


def load_pretrained(model, path):
    """Copies generator and discriminator weights from a saved 3D-GAN or 3D-VAE-GAN `.keras` file."""
    if not os.path.isfile(path):
        raise ConfigError(f"init_from: {path} is not a file")
    try:
        source = keras.saving.load_model(path)
        for name in ("generator", "discriminator"):
            getattr(model, name).set_weights(getattr(source, name).get_weights())
    except (ValueError, OSError, AttributeError) as error:
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


def _reconstruction_images(files, model_config):
    """A fixed set of photos, in file order, shown beside their reconstructions."""
    dataset = data.make_dataset(
        files, model_config.resolution, 1, model_config.image_size, shuffle_buffer=0, repeat=False
    ).take(RECONSTRUCTION_COUNT)
    return np.concatenate([keras.ops.convert_to_numpy(images) for images, _ in dataset])


def train(model_config, train_config, data_dir, model_dir, verbose=True):
    """Trains (or resumes) a model in `model_dir`; returns the path of the final `.keras` file.

    Raises ConfigError, data.DataError, CheckpointError or callbacks.NonFiniteLoss
    with a one-line message; the last good checkpoint is never touched by a failure.
    """
    model_config.validate()
    train_config.validate()
    is_vaegan = model_config.model_type == "vaegan"
    files = data.find_records(data_dir)
    data.check_records(files, model_config.resolution, need_images=is_vaegan)
    chief = distribute.is_chief()
    strategy = distribute.make_strategy(train_config.distribution_strategy)
    check_model_dir(model_dir, model_config, train_config, write=chief)
    set_precision(train_config.precision)
    with strategy.scope():
        model = build_model(model_config, train_config)
    checkpoint = tf.train.Checkpoint(model=model, **optimizers_of(model))
    checkpoint_dir = os.path.join(model_dir, "checkpoints")
    if not chief:
        checkpoint_dir = os.path.join(model_dir, f".worker-{os.getpid()}-checkpoints")
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=train_config.keep_checkpoints)
    restored = restore_latest(checkpoint, manager)
    use_configured_learning_rates(model, train_config)
    step = callbacks.current_step(model)
    final_path = os.path.join(model_dir, FINAL_MODEL)
    if restored and step >= train_config.train_steps and os.path.exists(final_path):
        if verbose:
            print(f"{model_dir}: already trained to step {step}; nothing to do")
        return final_path
    if restored is None and train_config.init_from:
        load_pretrained(model, train_config.init_from)
    if verbose:
        print(f"{'resuming from ' + restored if restored else 'starting'} at step {step} of {train_config.train_steps}")

    writer = tf.summary.create_file_writer(os.path.join(model_dir, "logs")) if chief else tf.summary.create_noop_writer()
    guard = callbacks.NaNGuard()
    run_callbacks = [guard, callbacks.ScalarSummaries(writer, train_config.log_every)]
    if verbose:
        run_callbacks.append(callbacks.ProgressBar(train_config.train_steps, step))
    pictures = None
    if chief:
        latent = model.sample_latent(SAMPLE_COUNT, tf.constant([train_config.seed, -1], tf.int64))
        images = _reconstruction_images(files, model_config) if is_vaegan else None
        pictures = callbacks.SamplePictures(model_dir, writer, train_config.sample_every, latent, images)
        pictures.set_model(model)  # `fit` sets it too, but a finished run resumed to save runs no `fit`
        run_callbacks.append(pictures)
        if train_config.mesh_summary_every:
            run_callbacks.append(callbacks.MeshSummaries(writer, train_config.mesh_summary_every, latent, images))

    while step < train_config.train_steps:
        if is_vaegan:
            model.stage = stage_at(step, train_config, model_config)
        end = chunk_end(step, train_config, model_config)
        dataset = data.make_dataset(
            files, model_config.resolution, train_config.batch_size, model_config.image_size if is_vaegan else None,
            seed=train_config.seed * 1_000_003 + step, augment=train_config.augment_images,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*shuffle=True.*")  # our datasets shuffle themselves
            model.fit(dataset, steps_per_epoch=end - step, epochs=1, verbose=0, callbacks=run_callbacks)
        if guard.failure:
            kept = manager.latest_checkpoint or "none written yet"
            raise callbacks.NonFiniteLoss(f"{guard.failure}; training stopped, last good checkpoint: {kept}")
        step = callbacks.current_step(model)
        manager.save(checkpoint_number=step)
    writer.flush()
    if chief:
        pictures.write(step)
        save_model_atomically(model, final_path)
        if verbose:
            print(f"\nsaved {final_path}")
    else:
        tf.io.gfile.rmtree(checkpoint_dir)
    return final_path

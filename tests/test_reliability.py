"""Faults during training: a second run on the same folder, SIGTERM, NaN losses, damaged TFRecords."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import in_process
from keras_vaegan import callbacks, data, run_lock, training
from keras_vaegan.config import ModelConfig, TrainConfig
from keras_vaegan.gan import GAN3D

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAN = ModelConfig(model_type="gan", resolution=32, latent_dim=16)
TINY = dict(batch_size=2, sample_every=100, log_every=1, mesh_summary_every=0, keep_checkpoints=10,
            picture_size=32)


def train_command(*args):
    return [sys.executable, os.path.join(ROOT, "train.py"), *args]


def start_train(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    return subprocess.Popen(train_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def weights_of(model_dir, step, model_config=GAN):
    """The model's weights at checkpoint `step`."""
    from keras_vaegan.models import build_model

    model = build_model(model_config, TrainConfig(batch_size=2))
    tf.train.Checkpoint(model=model).restore(os.path.join(model_dir, "checkpoints", f"ckpt-{step}")).expect_partial()
    return [w.numpy() for w in model.weights]


# ---------------------------------------------------------------- one run per model directory


def test_a_held_lock_refuses_a_second_run_and_names_the_first(tmp_path):
    with run_lock.RunLock(str(tmp_path)):
        with pytest.raises(run_lock.LockError) as refused:
            run_lock.RunLock(str(tmp_path)).acquire()
    assert f"{tmp_path}: in use by pid {os.getpid()} on host {socket.gethostname()} since " in str(refused.value)
    with run_lock.RunLock(str(tmp_path)) as again:  # released: free again, and nothing stale
        assert again.stale is None


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    holder = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys; from keras_vaegan.run_lock import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print(os.getpid(), flush=True); os.kill(os.getpid(), signal.SIGKILL)",
         str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert holder.returncode == -signal.SIGKILL
    with run_lock.RunLock(str(tmp_path)) as lock:
        assert lock.stale.startswith(f"pid {holder.stdout.strip()} on host {socket.gethostname()} since ")


def test_train_cli_refuses_a_folder_in_use_in_one_line(tmp_path, dataset_dir):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    with run_lock.RunLock(str(model_dir)):
        result = subprocess.run(
            train_command(f"--data_dir={dataset_dir}", f"--model_dir={model_dir}", "--model_type=gan"),
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {model_dir}: in use by pid {os.getpid()}")
    assert sorted(os.listdir(model_dir)) == [run_lock.LOCK_FILE]


# ---------------------------------------------------------------- SIGTERM / SIGINT


@pytest.mark.parametrize("name", ["SIGTERM", pytest.param("SIGINT", marks=pytest.mark.large)])
def test_a_signal_stops_with_a_checkpoint_and_exit_0(tmp_path, dataset_dir, name, capsys):
    model_dir = tmp_path / "run"
    common = [f"--data_dir={dataset_dir}", f"--model_dir={model_dir}", "--model_type=gan", "--latent_dim=16",
              "--batch_size=2", "--checkpoint_every=3", "--mesh_summary_every=0", "--sample_every=1000",
              "--picture_size=32"]
    process = start_train(*common, "--train_steps=100000")
    while not (model_dir / "checkpoints" / "ckpt-3.index").exists():
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.2)
    process.send_signal(getattr(signal, name))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    message = out.strip().splitlines()[-1]
    assert message.startswith(f"stopped by {name} at step ") and message.endswith("; checkpoint written"), out
    step = int(message.split(" at step ")[1].split(";")[0])
    assert step >= 1
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith(f"ckpt-{step}")
    assert (model_dir / run_lock.LOCK_FILE).read_text() == ""  # released
    assert not (model_dir / "model.keras").exists()

    import train  # the resumed run, in this process: the signal's part was the first process's

    resumed = in_process(train.main, train.FLAGS, capsys)(*common, f"--train_steps={step + 1}")
    assert resumed.returncode == 0, resumed.stderr
    assert f"ckpt-{step} at step {step} of {step + 1}" in resumed.stdout
    assert int(keras.saving.load_model(str(model_dir / "model.keras")).step.value) == step + 1


@pytest.mark.parametrize("model_type, schedule", [("gan", "joint"), ("vaegan", "separate")])
def test_a_run_resumed_anywhere_reads_the_batches_of_an_uninterrupted_run(dataset_dir, model_type, schedule):
    model_config = ModelConfig(model_type=model_type, resolution=32, image_size=32)
    config = TrainConfig(batch_size=2, train_steps=12, checkpoint_every=4, schedule=schedule, pretrain_steps=6)
    files = data.find_records(dataset_dir)

    def batches(start, count):
        taken = training.dataset_from(start, files, model_config, config).take(count)
        return [keras.tree.flatten(keras.tree.map_structure(lambda t: t.numpy(), batch)) for batch in taken]

    # The uninterrupted run's chunks: [0, 4), [4, 6) (and [4, 8) for the GAN), ...
    uninterrupted = []
    step = 0
    while step < config.train_steps:
        end = training.chunk_end(step, config, model_config)
        uninterrupted += batches(step, end - step)
        step = end
    for start in range(config.train_steps):
        resumed = batches(start, training.chunk_end(start, config, model_config) - start)
        for expected, got in zip(uninterrupted[start:], resumed, strict=False):
            for want, have in zip(expected, got):
                np.testing.assert_array_equal(have, want)


def test_every_iterator_of_a_training_dataset_reads_the_same_batches(dataset_dir):
    """Under a distribution strategy Keras' fit reads a batch from an iterator of its own, then trains from a
    second one: the batches must not depend on how far the first ran (past an epoch's end, it used to take the
    next epoch's order and leave the following one to fit, or not, as its prefetching happened to go)."""
    dataset = data.make_dataset(data.find_records(dataset_dir), 32, 2, seed=5)
    first = iter(dataset)
    ahead = [next(first).numpy() for _ in range(10)]  # 20 of the 12 records: past the first epoch
    again = [batch.numpy() for batch in dataset.take(10)]
    for want, have in zip(ahead, again, strict=True):
        np.testing.assert_array_equal(have, want)


# ---------------------------------------------------------------- NaN / Inf


@pytest.fixture
def nan_at_steps(monkeypatch):
    """Makes G's loss NaN at the given 0-based steps (a test-only fault, as a diverging run would show)."""

    def poison(steps):
        healthy = GAN3D.generator_loss  # G's loss whether its gradients come from its own pass or D's

        def poisoned(self, fake_logits):
            loss = healthy(self, fake_logits)
            bad = tf.reduce_any(tf.equal(self.step.value, tf.constant(steps, tf.int64)))
            return loss * tf.where(bad, float("nan"), 1.0)  # (a tf.where around the loss would make NaN gradients)

        monkeypatch.setattr(GAN3D, "generator_loss", poisoned)

    return poison


def test_skip_drops_a_non_finite_step_and_goes_on(tmp_path, dataset_dir, nan_at_steps, capsys):
    nan_at_steps([2])
    model_dir = str(tmp_path / "run")
    config = TrainConfig(train_steps=4, checkpoint_every=2, on_nonfinite="skip", **TINY)
    final = training.train(GAN, config, dataset_dir, model_dir)
    assert "skipped the updates of 1 non-finite steps: 3" in capsys.readouterr().out
    model = keras.saving.load_model(final)
    assert int(model.step.value) == 4
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)
    # Step 3's update was dropped: the weights after it are those of the checkpoint before it, then one step.
    assert not all(np.array_equal(a, b) for a, b in zip(weights_of(model_dir, 2), weights_of(model_dir, 4)))


def test_skip_stops_after_too_many_in_a_row_and_keeps_the_checkpoint(tmp_path, dataset_dir, nan_at_steps):
    nan_at_steps(list(range(2, 100)))  # diverged for good from step 3 on
    model_dir = str(tmp_path / "run")
    config = TrainConfig(train_steps=8, checkpoint_every=2, on_nonfinite="skip", max_skipped_in_a_row=2, **TINY)
    with pytest.raises(callbacks.NonFiniteLoss, match=r"step 5: g_loss is nan; 3 non-finite steps in a row.*ckpt-4"):
        training.train(GAN, config, dataset_dir, model_dir, verbose=False)
    # Steps 3 and 4 passed without updates: checkpoint 4 holds the weights of checkpoint 2.
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("ckpt-4")
    for at_2, at_4 in zip(weights_of(model_dir, 2), weights_of(model_dir, 4)):
        assert np.isfinite(at_4).all()
        assert at_2.shape == () or np.array_equal(at_2, at_4)


# ---------------------------------------------------------------- damaged data


def damaged_copy(dataset_dir, tmp_path, damage):
    """A copy of the dataset whose first shard went through `damage(bytes) -> bytes`; returns (folder, shard)."""
    out = tmp_path / "damaged"
    shutil.copytree(dataset_dir, out)
    shard = data.find_records(str(out))[0]
    with open(shard, "rb") as handle:
        content = handle.read()
    with open(shard, "wb") as handle:
        handle.write(damage(content))
    return str(out), shard


def flip_byte(at):
    return lambda content: content[:at] + bytes([content[at] ^ 0xFF]) + content[at + 1 :]


def record_count(files, exclude):
    dataset = data.make_dataset(files, 32, 1, shuffle_buffer=0, repeat=False, exclude=exclude)
    return sum(1 for _ in dataset)


@pytest.mark.parametrize(
    "damage, problem",
    [
        (flip_byte(5000), "damaged TFRecord frame"),
        (lambda content: content[:-100], "damaged TFRecord frame"),
        (lambda content: content[:3], "damaged TFRecord frame"),
    ],
    ids=["flipped-byte", "truncated", "cut-in-header"],
)
def test_a_damaged_shard_fails_naming_file_and_record_or_is_skipped(tmp_path, dataset_dir, damage, problem):
    folder, shard = damaged_copy(dataset_dir, tmp_path, damage)
    files = data.find_records(folder)
    with pytest.raises(data.DataError, match=rf"{shard}: record \d+: {problem}"):
        data.scan_records(files, 32, need_images=True)
    scan = data.scan_records(files, 32, need_images=True, skip_bad=True)
    [(path, index, found)] = scan.bad
    assert (path, scan.readable[path]) == (shard, index)
    total = record_count(data.find_records(dataset_dir), None)
    assert scan.good == record_count(files, scan.exclusions()) < total


def test_records_of_a_wrong_schema_are_named_and_left_out(tmp_path, dataset_dir):
    folder = tmp_path / "mixed"
    shutil.copytree(dataset_dir, folder)
    foreign = str(folder / "z-foreign.tfrecord")
    good = data.encode_example(np.ones((32, 32, 32), bool))
    with tf.io.TFRecordWriter(foreign) as writer:
        for record in [good, tf.train.Example().SerializeToString(), b"\x00garbage", good]:
            writer.write(record)
    (folder / "empty.tfrecord").write_bytes(b"")  # an empty shard is valid: it holds no records
    files = data.find_records(str(folder))
    with pytest.raises(data.DataError, match=f"{foreign}: record 1: not a keras-vaegan record"):
        data.scan_records(files, 32, need_images=False)
    scan = data.scan_records(files, 32, need_images=False, skip_bad=True)
    assert [(path, index) for path, index, _ in scan.bad] == [(foreign, 1), (foreign, 2)]
    assert scan.good == record_count(files, scan.exclusions()) == record_count(data.find_records(dataset_dir), None) + 2
    with pytest.raises(data.DataError, match=f"{foreign}: record 0: holds no image"):
        data.scan_records(files, 32, need_images=True, skip_bad=False)


def test_training_skips_bad_records_on_request(tmp_path, dataset_dir, capsys):
    folder, shard = damaged_copy(dataset_dir, tmp_path, flip_byte(5000))
    model_dir = str(tmp_path / "run")
    with pytest.raises(data.DataError, match=f"{shard}: record"):
        training.train(GAN, TrainConfig(train_steps=2, checkpoint_every=2, **TINY), folder, model_dir)
    config = TrainConfig(train_steps=2, checkpoint_every=2, bad_records="skip", **TINY)
    training.train(GAN, config, folder, model_dir)
    assert f"left out 1 bad records of " in capsys.readouterr().out
    assert os.path.exists(os.path.join(model_dir, "model.keras"))

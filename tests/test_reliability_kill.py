"""train.py in deterministic mode, killed with SIGKILL again and again (at random steps and while it writes a
checkpoint), then restarted; and the cheap version of the same check for the default suite.

Checks at every restart: it resumes from the newest complete checkpoint (which loads in full), the step never
goes back, no temporary checkpoint is ever what a run loads, and the checkpoint it resumes from is bit for bit
the uninterrupted run's; at the end, every checkpoint and the final model are bit for bit the uninterrupted
run's, and so is a second uninterrupted run. The counts go to docs/reliability.md.
"""

import glob
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 24
STEP_KILLS = 20
WRITE_KILLS = 6
# The settings whose state a resume must restore besides the weights: Adam, G's moving average, D's accuracy
# gate (the paper's nonsaturating loss), the instance noise's schedule.
ARGS = ["--model_type=gan", "--latent_dim=16", "--batch_size=2", "--checkpoint_every=3", "--keep_checkpoints=100",
        "--sample_every=1000", "--mesh_summary_every=0", "--log_every=1", "--deterministic", "--ema_momentum=0.9",
        "--instance_noise=0.1", "--instance_noise_steps=20", "--picture_size=32"]
# How a restart begins; a kill after the final model was saved leaves a run that is "already trained".
RESUMED = re.compile(r"^(?:(?:resuming from (\S+)|starting) at step (\d+) of|\S+: already trained to step (\d+);)",
                     re.MULTILINE)
# The checkpoint counts its own saves, which a killed run repeats; nothing reads it back.
SAVE_COUNTER = "save_counter/.ATTRIBUTES/VARIABLE_VALUE"


def start(dataset_dir, model_dir, steps=STEPS):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    command = [sys.executable, os.path.join(ROOT, "train.py"), f"--data_dir={dataset_dir}", f"--model_dir={model_dir}",
               f"--train_steps={steps}", *ARGS]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def finish(process):
    """Waits for a train.py run; asserts it ended well."""
    output = process.communicate(timeout=900)[0].decode(errors="replace")
    assert process.returncode == 0, output[-2000:]


def train(dataset_dir, model_dir, steps=STEPS):
    """An uninterrupted run of train.py to `steps`."""
    finish(start(dataset_dir, model_dir, steps))


class Output:
    """A running train.py's output, read in a thread: its start line and the last step its progress bar shows."""

    def __init__(self, process):
        self.process = process
        self.text = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for chunk in iter(lambda: os.read(self.process.stdout.fileno(), 4096), b""):
            self.text += chunk.decode(errors="replace")

    def start_line(self, timeout=300):
        """The RESUMED match of the run's first line of its own, or None if it ended without one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = RESUMED.search(self.text)
            if found or (self.process.poll() is not None and not self.reader.is_alive()):
                return found
            time.sleep(0.01)
        return None

    def step(self):
        shown = re.findall(rf"(\d+)/{STEPS}\b", self.text)
        return int(shown[-1]) if shown else -1


def latest_complete(checkpoint_dir):
    """The checkpoint the state file names, read in full (every tensor), or None."""
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest is None:
        return None
    checkpoint_values(latest)
    return latest


def checkpoint_values(path):
    """Every tensor of a checkpoint by name (but its save counter)."""
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map() if name != SAVE_COUNTER}


def differing(values, reference):
    """Names whose values are not bit for bit those of `reference` (or are missing from either)."""
    return sorted(name for name in values.keys() | reference.keys()
                  if name not in values or name not in reference
                  or np.asarray(values[name]).tobytes() != np.asarray(reference[name]).tobytes())


def same_checkpoint(model_dir, reference_dir, step):
    path = os.path.join("checkpoints", f"ckpt-{step}")
    return not differing(checkpoint_values(os.path.join(model_dir, path)),
                         checkpoint_values(os.path.join(reference_dir, path)))


def step_of(path):
    return int(path.rsplit("-", 1)[1]) if path else 0


def kill_at_step(process, output, target, delay):
    """Kills once the progress bar has shown step `target`, `delay` seconds later; True if it was running."""
    while output.step() < target and process.poll() is None:
        time.sleep(0.005)
    time.sleep(delay)
    caught = process.poll() is None
    process.kill()
    return caught


def kill_while_writing(process, checkpoint_dir, deadline):
    """Waits for a checkpoint write in progress (its `_temp` folder) and kills then; True if it caught one."""
    while time.monotonic() < deadline and process.poll() is None:
        if glob.glob(os.path.join(checkpoint_dir, "*_temp")):
            process.kill()
            return True
        time.sleep(0.002)
    process.kill()
    return False


def final_weights(model_dir):
    import keras

    import keras_vaegan.models  # noqa: F401 (registers the classes)

    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    return {w.path: w.numpy() for w in model.weights}


@pytest.mark.large  # 3 trainings in 3 processes (33 s); the default suite keeps the data order's tests
def test_deterministic_runs_and_a_resumed_one_are_bit_identical(tmp_path, dataset_dir):
    """Two processes train 3 steps to the same checkpoint; one of them, resumed in a third to 6 steps, ends with
    the final model of a run that went to 6 steps at once."""
    uninterrupted = start(dataset_dir, tmp_path / "uninterrupted", steps=6)  # beside the other two
    train(dataset_dir, tmp_path / "resumed", steps=3)
    train(dataset_dir, tmp_path / "resumed", steps=6)
    finish(uninterrupted)
    assert same_checkpoint(tmp_path / "resumed", tmp_path / "uninterrupted", 3)
    assert not differing(final_weights(tmp_path / "resumed"), final_weights(tmp_path / "uninterrupted"))


@pytest.mark.large
def test_sigkill_anywhere_then_restart_gives_the_uninterrupted_runs_weights(tmp_path, dataset_dir):
    rng = random.Random(8)
    reference_dirs = [tmp_path / "uninterrupted-1", tmp_path / "uninterrupted-2"]
    for reference_dir in reference_dirs:
        train(dataset_dir, reference_dir)
    model_dir = tmp_path / "killed"
    checkpoint_dir = os.path.join(model_dir, "checkpoints")
    kills = {"at a random step": 0, "during a checkpoint write": 0}
    resumes, kill_steps, leftovers, previous = [], [], 0, 0
    for attempt in range(3 * (STEP_KILLS + WRITE_KILLS)):
        expected = latest_complete(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
        leftovers += len(glob.glob(os.path.join(checkpoint_dir, "*_temp")))
        process = start(dataset_dir, model_dir)
        output = Output(process)
        found = output.start_line()
        assert found, f"no start line: {output.text[-2000:]}"
        if found[3]:  # killed between saving the final model and exiting: nothing left to do
            assert int(found[3]) == step_of(expected) == STEPS and process.wait(timeout=60) == 0
            resumes.append(STEPS)
            break
        resumed_from, step = found[1], int(found[2])
        assert resumed_from == expected, (resumed_from, expected)  # the newest complete checkpoint, never a temp
        assert step == step_of(expected) >= previous  # never backwards
        assert step == 0 or same_checkpoint(model_dir, reference_dirs[0], step)  # bit for bit where it resumes
        resumes.append(step)
        if sum(kills.values()) == STEP_KILLS + WRITE_KILLS:
            process.wait(timeout=900)
        elif kills["during a checkpoint write"] < WRITE_KILLS and attempt % 4 == 3:
            caught = kill_while_writing(process, checkpoint_dir, time.monotonic() + 60)
            kills["during a checkpoint write" if caught else "at a random step"] += 1
        else:
            target = min(step + rng.randint(1, 5), STEPS - 1)  # a step in this chunk or the next
            if kill_at_step(process, output, target, rng.uniform(0, 0.3)):
                kills["at a random step"] += 1
                kill_steps.append(output.step())
        process.wait()
        if process.returncode == 0:
            break
        assert process.returncode == -signal.SIGKILL
        previous = step
    else:
        pytest.fail(f"the run did not finish in {3 * (STEP_KILLS + WRITE_KILLS)} attempts")
    assert kills == {"at a random step": STEP_KILLS, "during a checkpoint write": WRITE_KILLS}, kills
    assert not glob.glob(os.path.join(checkpoint_dir, "*_temp"))  # the finishing run removed them

    steps = sorted(step_of(path) for path in tf.train.get_checkpoint_state(checkpoint_dir).all_model_checkpoint_paths)
    assert steps == list(range(3, STEPS + 1, 3))
    assert all(same_checkpoint(model_dir, reference_dirs[0], step) for step in steps)
    reference = final_weights(reference_dirs[0])
    assert not differing(final_weights(reference_dirs[1]), reference)
    assert not differing(final_weights(model_dir), reference)
    print(f"\nkills: {kills}; steps shown when killed: {kill_steps}; restarts resumed at steps {resumes}, each from "
          f"a checkpoint bit for bit the uninterrupted run's; temporary checkpoint folders found after kills: "
          f"{leftovers}; checkpoints {steps} and the final model bit for bit the uninterrupted run's, and so is a "
          f"second uninterrupted run")

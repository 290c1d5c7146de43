"""`python -m data_tools` and `python -m export` killed with SIGKILL again and again, then rerun: the conversion
0-1 s after a random number of further shards is finished (a rerun resumes, so its remaining time shrinks), the
export (which starts over) at a random time within an uninterrupted export's duration.

After every kill, each file in the output's place is bit for bit the one an uninterrupted run writes there (no
half-written file is ever in place); the rerun after the last kill ends with the uninterrupted run's output.
The commands run in sessions of their own and the kills reach their whole process group (Beam's workers too).
The counts go to docs/reliability.md.
"""

import glob
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, boxes, save_npy_gz, save_tiny_model

KILLS = 10
SAVED_MODEL = "saved_model"


def command(module, *args):
    return [sys.executable, "-m", module, *map(str, args)]


def run_to_the_end(arguments):
    """Runs a command to its end; returns how long it took in seconds."""
    began = time.monotonic()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(arguments, capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return time.monotonic() - began


def kill_when(arguments, ready):
    """Starts a command in a session of its own and SIGKILLs its process group once `ready()` holds; True if it
    was still running then."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env,
                               start_new_session=True)
    while process.poll() is None and not ready():
        time.sleep(0.01)
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return True


def after(seconds):
    """A condition that holds `seconds` after it is made."""
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


def file_digests(folder, skip=lambda relative: False):
    """{path relative to `folder`: SHA-256} of every file in it, but those `skip` names."""
    digests = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, folder)
            if not skip(relative):
                with open(path, "rb") as handle:
                    digests[relative] = hashlib.sha256(handle.read()).hexdigest()
    return digests


def kill_again_and_again(arguments, out, next_kill, check, output_of, reference):
    """Starts `arguments` and kills it when the condition `next_kill()` makes holds, `check()` after each, until
    KILLS kills caught it running. A start that ends first must have written `reference` (`output_of(out)`); `out`
    is then removed for the next start to begin anew. Returns (starts, starts that ended first)."""
    caught = starts = ended = 0
    while caught < KILLS:
        assert starts < 3 * KILLS, f"only {caught} of {starts} kills caught the command running"
        starts += 1
        if kill_when(arguments, next_kill()):
            caught += 1
            check()
        else:
            assert output_of(out) == reference
            ended += 1
            shutil.rmtree(out)
    return starts, ended


# ---------------------------------------------------------------- conversion


def in_staging(relative):
    return relative.startswith(".incomplete-")


def finished_shards(out):
    """How many shards the conversion into `out` has finished (each gets its sidecar .json in the staging folder)."""
    return len(glob.glob(os.path.join(glob.escape(str(out)), ".incomplete-*", "*", "*.json")))


def shards_later(out, rng, kills):
    """A condition that holds 0-1 s after 1-4 more shards are finished than now; its draw goes to `kills`."""
    target, delay = finished_shards(out) + rng.randint(1, 4), rng.uniform(0, 1)
    kills.append((target, round(delay, 2)))
    reached = []

    def ready():
        if not reached and finished_shards(out) >= target:
            reached.append(time.monotonic())
        return bool(reached) and time.monotonic() >= reached[0] + delay

    return ready


@pytest.mark.large
def test_a_conversion_killed_anywhere_then_rerun_writes_the_uninterrupted_runs_bytes(tmp_path):
    source = save_npy_gz(tmp_path / "in" / "table.npy.gz", boxes(200))

    def convert(out):
        return command("data_tools", "modelnet", f"--input={source}", f"--out={out}", "--shard_mb=0.002",
                       "--voxel_framing=stored")  # refitted, some boxes would fill their grid and be skipped

    duration = run_to_the_end(convert(tmp_path / "uninterrupted"))
    reference = file_digests(tmp_path / "uninterrupted")
    out = tmp_path / "killed"
    half_written, kills = [], []

    def check():
        in_place = file_digests(out, skip=in_staging) if out.exists() else {}
        half_written.extend(path for path, digest in in_place.items() if reference.get(path) != digest)

    rng = random.Random(3)
    starts, ended = kill_again_and_again(convert(out), out, lambda: shards_later(out, rng, kills), check, file_digests,
                                         reference)
    run_to_the_end(convert(out))
    assert not half_written
    assert file_digests(out) == reference
    print(f"\nconversion ({duration:.0f} s uninterrupted, {len(reference)} files): {KILLS} kills caught it running "
          f"in {starts} starts ({ended} ended first, with the uninterrupted run's files), at (finished shards, "
          f"seconds after) {kills}; files in place after the kills: never one unlike the uninterrupted run's; the "
          f"rerun wrote the uninterrupted run's files bit for bit")


# ---------------------------------------------------------------- export


def without_saved_model(relative):
    return relative.split(os.sep)[0] == SAVED_MODEL


def saved_model_tensors(folder):
    """The SavedModel's variable values, sorted: Keras' ExportArchive lists the variables in an order that changes
    from process to process (so two uninterrupted exports differ in the SavedModel's bytes, never in its values)."""
    reader = tf.train.load_checkpoint(os.path.join(folder, SAVED_MODEL, "variables", "variables"))
    names = [name for name in reader.get_variable_to_shape_map() if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    return sorted(np.asarray(reader.get_tensor(name)).tobytes() for name in names)


def export_report(folder):
    """export_report.json without the SavedModel's size, which follows its variable order."""
    with open(os.path.join(folder, "export_report.json")) as handle:
        result = json.load(handle)
    for entry in result["files"]:
        entry.pop("size_bytes")
    return result


def export_output(folder):
    return (file_digests(folder, skip=lambda relative: without_saved_model(relative)
                         or relative == "export_report.json"),
            export_report(folder), saved_model_tensors(folder))


@pytest.mark.large
def test_an_export_killed_anywhere_then_rerun_writes_the_uninterrupted_runs_output(tmp_path):
    model = save_tiny_model(str(tmp_path), "gan")

    def export(out):
        return command("export", f"--model={model}", f"--out={out}")

    duration = run_to_the_end(export(tmp_path / "uninterrupted"))
    reference = export_output(tmp_path / "uninterrupted")
    out = tmp_path / "killed"
    incomplete = []

    def check():
        if out.exists() and export_output(out) != reference:
            incomplete.append(sorted(os.listdir(out)))

    rng, times = random.Random(4), []

    def at_a_random_time():
        times.append(round(rng.uniform(0.5, duration), 1))
        return after(times[-1])

    starts, ended = kill_again_and_again(export(out), out, at_a_random_time, check, export_output, reference)
    leftovers = glob.glob(str(tmp_path / ".killed.tmp-*"))
    run_to_the_end(export(out))
    assert not incomplete
    assert export_output(out) == reference
    assert not glob.glob(str(tmp_path / ".killed.tmp-*")) + glob.glob(str(tmp_path / "killed.old-*"))  # cleared
    print(f"\nexport ({duration:.0f} s uninterrupted): {KILLS} kills caught it running in {starts} starts ({ended} "
          f"ended first, with the uninterrupted run's output), at {times} s; the output folder after the kills: absent "
          f"or complete, never partial; staging folders left beside it: {len(leftovers)}, removed by the rerun, which wrote the "
          f"uninterrupted run's TFLite files and report bit for bit, and its SavedModel's variable values")

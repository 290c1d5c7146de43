"""Hostile headers: files claiming counts and sizes they cannot hold, refused in one line by every reader and
command line, each in under 2 s and 1 GiB resident, before anything is allocated (docs/reliability.md).

The default suite runs a seeded share of tests/hostile_files.py through the readers (in a child process, as
test_fuzz does) and checks the real files in ../shared/data still pass. `-m large` runs all of them, with
real zip bombs, through the readers and through the command lines that read such files: python -m
data_tools files (meshes, binvox) and modelnet (OFF, .npy, .npy.gz, .mat), and python -m export.infer
--image (photos), measuring every process's peak resident memory.
"""

import glob
import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from hostile_files import hostile_files
from test_fuzz import SHARED, check_readers
from vaegan_utils import headers, readers
from vaegan_utils.images import pixel_count_problem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_SECONDS = 2.0
MAX_RESIDENT_MIB = 1024
FAST_SHARE = 5  # the default suite runs one case in this many


def refusal_problems(cases, results):
    """What is wrong with the child's results: a case read, crashed, unnamed, slow or over the memory bound."""
    names = {f"case{i:03d}.{ext}": name for i, (name, ext, _) in enumerate(cases)}
    return [f"{names[os.path.basename(path)]} ({reader}): {outcome} {seconds:.2f} s {peak:.0f} MiB {message}"
            for path, reader, outcome, seconds, peak, message in results
            if outcome != "refused" or seconds >= MAX_SECONDS or peak >= MAX_RESIDENT_MIB]


def test_a_share_of_hostile_files_is_refused_by_every_reader(tmp_path):
    cases = hostile_files(random.Random(0))[::FAST_SHARE]
    results = check_readers(tmp_path, [(ext, content) for _, ext, content in cases])
    assert not refusal_problems(cases, results)


def test_the_real_files_pass_the_header_checks():
    for path in glob.glob(os.path.join(SHARED, "meshes", "*")):
        headers.check_mesh(path)
    for path in glob.glob(os.path.join(SHARED, "*.npz")):
        headers.check_npz(path)
    for path in glob.glob(os.path.join(SHARED, "binvox", "*.binvox")):
        readers.read_binvox(path)
    for path in glob.glob(os.path.join(SHARED, "ikea-sample", "Voxels", "*.mat")):
        readers.read_mat_voxels(path)
    photos = glob.glob(os.path.join(SHARED, "ikea-sample", "Images", "*.jpg"))
    photos += glob.glob(os.path.join(SHARED, "places365-rooms", "*", "*.jpg"))
    assert len(photos) > 1800
    for path in photos:
        with Image.open(path) as picture:
            assert pixel_count_problem(*picture.size) is None, path


@pytest.mark.large
def test_every_hostile_file_is_refused_by_every_reader(tmp_path):
    cases = hostile_files(random.Random(1), bombs=True)
    results = check_readers(tmp_path, [(ext, content) for _, ext, content in cases])
    assert len(cases) >= 500 and not refusal_problems(cases, results)
    print(f"\nreaders: {len(cases)} hostile files, {len(results)} reads, all refused; slowest "
          f"{max(r[3] for r in results):.3f} s, peak resident {max(r[4] for r in results):.0f} MiB")


# ---------------------------------------------------------------- command lines


def _descendants(pid):
    """Ids of the processes below `pid` (from /proc)."""
    parents = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as file:
                fields = file.read().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _resident_peak_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as file:
            return next(int(line.split()[1]) for line in file if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return 0.0


# Runs the command from a small Python, whose resident peak is all a fresh child inherits: Linux carries a
# process's peak across exec, so a command started straight from this (TensorFlow-sized) process reports ours.
LAUNCHER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
            "usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(f'cpu_seconds={usage.ru_utime + usage.ru_stime} peak_kib={usage.ru_maxrss}', file=sys.stderr); "
            "sys.exit(code)")


def run_measured(args):
    """(CompletedProcess, wall seconds, CPU seconds, highest peak resident MiB of the command and its
    descendants) of `python args`: CPU time and the command's own peak (with the children it waited for)
    from its launcher, and the peaks of descendants it may not wait for (Beam workers) read from /proc."""
    process = subprocess.Popen([sys.executable, "-c", LAUNCHER, sys.executable, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    peak, done = [0.0], threading.Event()

    def watch():
        while not done.wait(0.2):
            peak[0] = max([peak[0]] + [_resident_peak_mib(pid) for pid in _descendants(process.pid)])

    watcher = threading.Thread(target=watch)
    start = time.monotonic()
    watcher.start()
    out, err = process.communicate(timeout=1800)
    seconds = time.monotonic() - start
    done.set()
    watcher.join()
    err, _, usage = err.rpartition("cpu_seconds=")
    cpu_seconds, kib = usage.split(" peak_kib=")
    completed = subprocess.CompletedProcess(args, process.returncode, out, err)
    return completed, seconds, float(cpu_seconds), max(peak[0], int(kib) / 1024)


def write_cases(folder, cases):
    """Writes each (name, extension, bytes) case as folder/<extension family>/caseNNN.<extension>; the paths."""
    paths = []
    for i, (_, ext, content) in enumerate(cases):
        path = os.path.join(folder, ext.split(".")[0], f"case{i:03d}.{ext}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(content)
        paths.append(path)
    return paths


def assert_every_sample_skipped_by_name(source, cases, good, tmp_path):
    """`python -m data_tools <source>` over the hostile cases and `good` files: every hostile one is skipped
    in report.json with a one-line reason naming it; the run ends normally. Returns the measurements."""
    paths = write_cases(tmp_path / "in", cases)
    for i, path in enumerate(good):
        target = tmp_path / "in" / "good" / f"good{i}{os.path.splitext(path)[1]}"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(open(path, "rb").read())
    result, seconds, cpu_seconds, peak = run_measured(["-m", "data_tools", source, f"--input={tmp_path / 'in'}",
                                          f"--out={tmp_path / 'out'}", "--resolution=32", "--views=0",
                                          "--max_error_rate=1"])
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    with open(tmp_path / "out" / "report.json") as file:
        skipped = {entry["path"]: entry["reason"] for entry in json.load(file)["skipped"]}
    assert set(skipped) == set(paths), set(paths) ^ set(skipped)
    unnamed = [reason for path, reason in skipped.items() if not reason.startswith(path) or "\n" in reason]
    assert not unnamed, unnamed
    assert peak < MAX_RESIDENT_MIB and seconds < MAX_SECONDS * len(paths), (seconds, peak)
    return len(paths), seconds, cpu_seconds, peak


@pytest.mark.large
def test_data_tools_skips_every_hostile_file_by_name(tmp_path):
    cases = hostile_files(random.Random(2))
    meshes = [case for case in cases if case[1] in ("ply", "stl", "obj", "off", "binvox")]
    arrays = [case for case in cases if case[1] in ("off", "npy", "npy.gz", "mat")]
    real = [os.path.join(SHARED, "meshes", "modelnet-chair_0001.off"), os.path.join(SHARED, "binvox", "chair.binvox")]
    for source, chosen, good in (("files", meshes, real), ("modelnet", arrays, real[:1])):
        count, seconds, cpu_seconds, peak = assert_every_sample_skipped_by_name(source, chosen, good, tmp_path / source)
        print(f"\ndata_tools {source}: {count} hostile files skipped by name in {seconds:.1f} s wall "
              f"({seconds / count:.3f} s each; {cpu_seconds:.1f} s CPU in all), peak resident {peak:.0f} MiB")


@pytest.fixture(scope="module")
def reconstruct_tflite(tmp_path_factory):
    """A fp32 reconstruct_*.tflite of a tiny untrained 3D-VAE-GAN (as tests/test_infer.py builds it)."""
    from export import tflite
    from keras_vaegan.config import ModelConfig, TrainConfig
    from keras_vaegan.models import build_model

    root = tmp_path_factory.mktemp("edge")
    model = build_model(ModelConfig(resolution=32, latent_dim=16, image_size=32), TrainConfig(batch_size=2))
    tflite.write_saved_model(model, "reconstruct", str(root / "saved"))
    path = root / "reconstruct_fp32.tflite"
    path.write_bytes(tflite.convert(str(root / "saved"), "tflite_fp32"))
    return str(path)


def infer(model, photo, out):
    return run_measured(["-m", "export.infer", f"--model={model}", f"--image={photo}", f"--out={out}"])


@pytest.mark.large
def test_infer_refuses_every_hostile_photo_in_one_line(reconstruct_tflite, tmp_path):
    photos = [case for case in hostile_files(random.Random(3)) if case[1] in ("png", "jpg", "gif", "bmp")]
    problems, slowest, most_cpu, peak = [], 0.0, 0.0, 0.0
    for path in write_cases(tmp_path / "in", photos):
        result, seconds, cpu_seconds, resident = infer(reconstruct_tflite, path, tmp_path / "out")
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        if result.returncode != 2 or len(errors) != 1 or not errors[0].startswith(f"error: {path}: ") \
                or "Traceback" in result.stderr or os.path.exists(tmp_path / "out"):
            problems.append(f"{path}: {result.returncode} {result.stderr[-500:]}")
        slowest, most_cpu, peak = max(slowest, seconds), max(most_cpu, cpu_seconds), max(peak, resident)
    assert not problems, problems
    assert peak < MAX_RESIDENT_MIB and most_cpu < MAX_SECONDS, (peak, most_cpu)
    start_up = min(infer(reconstruct_tflite, tmp_path / "missing.jpg", tmp_path / "out")[2] for _ in range(3))
    print(f"\nexport.infer --image: {len(photos)} hostile photos refused in one line; slowest run {slowest:.2f} s "
          f"wall, at most {most_cpu:.2f} s CPU (refusing a missing photo: {start_up:.2f} s CPU); "
          f"peak resident {peak:.0f} MiB")

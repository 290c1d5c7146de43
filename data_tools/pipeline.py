"""The conversion as an Apache Beam pipeline: tasks -> validated records -> deterministic shards.

Every task already knows its split and shard (from hashes of its ids, see `plan`), so the pipeline
is: Create(tasks) | Reshuffle | FlatMap(convert_task) | GroupByKey(shard) | Map(write_shard). Each
shard is written under a temporary name, renamed, and then described by a `<shard>.json` sidecar;
a shard with a sidecar is finished, which is what lets an interrupted run resume.
"""

import collections
import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import shlex
import shutil
import tempfile
import time

from data_tools import sources, validate, worker_memory
from vaegan_utils.errors import first_line
from vaegan_utils.files import write_atomically
from vaegan_utils.resample import to_resolution

SPLITS = ("train", "val", "test")
RUNNING_MODES = ("multi_processing", "multi_threading", "in_memory")


def split_of(model_id, val_fraction, test_fraction):
    """train/val/test from a hash of the model id alone: every image of a model lands in one split."""
    position = sources.stable_hash(f"split:{model_id}") / 2**64
    if position < test_fraction:
        return "test"
    return "val" if position < test_fraction + val_fraction else "train"


def plan(tasks, settings):
    """[(key, task)] with key = (split, shard, shard_count): shard counts follow --shard_mb, and tasks
    fill the shards in the order of a hash of their ids, so shards are even and mix the classes."""
    by_split = collections.defaultdict(list)
    for task in tasks:
        by_split[split_of(task.model_id, settings.val_fraction, settings.test_fraction)].append(task)
    target = settings.shard_mb * 2**20
    planned = []
    for split, members in sorted(by_split.items()):
        count = max(1, min(len(members), math.ceil(sum(t.estimated_bytes for t in members) / target)))
        members.sort(key=lambda t: (sources.stable_hash(f"shard:{t.source_id}"), t.source_id))
        planned += [((split, i * count // len(members), count), t) for i, t in enumerate(members)]
    return planned


def plan_digest(planned):
    """A hash of which task goes to which shard: a resumed run must have the same plan."""
    text = "\n".join(f"{key}\t{task.source_id}\t{task.paths}" for key, task in planned)
    return sources.stable_hash(text)


def shard_stem(key):
    split, shard, count = key
    return os.path.join(split, f"{split}-{shard:05d}-of-{count:05d}")


@functools.lru_cache(maxsize=256)
def _file_sha256(path, size, mtime):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path):
    """Content hash of a file, computed once per worker for files many tasks share."""
    stat = os.stat(path)
    return _file_sha256(path, stat.st_size, stat.st_mtime_ns)


class _Progress:
    """Tasks done by this worker process, written now and then to a file the driver sums up."""

    def __init__(self):
        self.count, self.written = 0, 0.0

    def tick(self, folder):
        self.count += 1
        now = time.monotonic()
        if folder and now - self.written > 0.5:
            self.written = now
            path = os.path.join(folder, f"{os.getpid()}")
            with contextlib.suppress(OSError):  # a worker on another machine has no such folder
                with open(f"{path}.tmp", "w") as file:
                    file.write(str(self.count))
                os.replace(f"{path}.tmp", path)


_PROGRESS = _Progress()


def _records(task, settings, class_id):
    from keras_vaegan.data import encode_example

    source = sources.module(settings.source)
    for sample in source.load(task, settings):
        validate.check_voxels(sample.voxels)
        voxels = to_resolution(sample.voxels, settings.resolution)
        validate.check_voxels(voxels, settings.resolution)
        if sample.native_voxels is not None:
            validate.check_voxels(sample.native_voxels)
        if sample.image:
            validate.check_image(sample.image)
        source_id = task.source_id if sample.view < 0 else f"{task.source_id}/view{sample.view:02d}"
        native = 0 if sample.native_voxels is None else len(sample.native_voxels)
        yield source_id, native, encode_example(voxels, image=sample.image, class_name=task.class_name,
                                                class_id=class_id, source_id=source_id,
                                                native_voxels=sample.native_voxels)


def convert_task(item, settings, class_ids, progress_dir):
    """(key, task) -> [(key, entry)]: its records, or one skip with the reason, plus its files' hashes."""
    key, task = item
    entries = []
    try:
        with worker_memory.ceiling(settings.worker_memory_gb):
            entries += [(key, ("record", source_id, data, task.class_name, native))
                        for source_id, native, data in _records(task, settings, class_ids[task.class_name])]
    except MemoryError:
        entries = [(key, ("skip", task.source_id, task.paths[0],
                          worker_memory.out_of_memory(task.paths[0], settings.worker_memory_gb)))]
    except Exception as error:  # any failure of one sample skips it, with its reason
        reason = first_line(error, 300)
        files = task.paths + ((task.image_path,) if task.image_path else ())
        photo = task.image_path if reason.startswith("image") and task.image_path else task.paths[0]
        blamed = next((path for path in files if reason.startswith(path)), photo)
        entries = [(key, ("skip", task.source_id, blamed, reason))]
    for path in task.paths + ((task.image_path,) if task.image_path else ()):
        with contextlib.suppress(OSError):
            entries.append((key, ("source", path, file_sha256(path))))
    _PROGRESS.tick(progress_dir)
    return entries


def write_json(path, value):
    """JSON through a temporary file and a rename."""
    def write(temp):
        with open(temp, "w") as file:
            json.dump(value, file, indent=1, sort_keys=True)
            file.write("\n")
    write_atomically(path, write)


def _write_records(path, records):
    import tensorflow as tf

    def write(temp):
        with tf.io.TFRecordWriter(temp) as writer:
            for _, data, _ in records:
                writer.write(data)
    write_atomically(path, write)


def write_shard(grouped, staging):
    """Writes one shard (records sorted by source id) and then its sidecar; returns the sidecar path."""
    key, entries = grouped
    records = sorted((e[1], e[2], e[3]) for e in entries if e[0] == "record")
    skipped = sorted({(e[1], e[2], e[3]) for e in entries if e[0] == "skip"})
    hashes = {e[1]: e[2] for e in entries if e[0] == "source"}
    stem = os.path.join(staging, shard_stem(key))
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    shard = f"{stem}.tfrecord"
    try:
        if records:
            _write_records(shard, records)
        sidecar = {
            "split": key[0], "shard": key[1], "shard_count": key[2], "records": len(records),
            "bytes": os.path.getsize(shard) if records else 0,
            "sha256": file_sha256(shard) if records else "",
            "classes": dict(collections.Counter(r[2] for r in records)),
            "native_resolutions": sorted({e[4] for e in entries if e[0] == "record" and e[4]}),
            "skipped": [{"source_id": s, "path": p, "reason": r} for s, p, r in skipped],
            "sources": hashes,
        }
        write_json(f"{stem}.json", sidecar)
    except Exception as error:  # TensorFlow reports a full disk as ResourceExhaustedError, not OSError
        reason = getattr(error, "strerror", None) or first_line(error).rsplit("; ", 1)[-1]
        raise OSError(f"{shard}: {reason} while writing the shard") from None
    return f"{stem}.json"


def pipeline_options(runner, num_workers, running_mode, extra_args):
    """Beam options: the DirectRunner with worker processes by default; `extra_args` (a string of
    --name=value options) reach other runners (Dataflow, Flink, Spark) unchanged."""
    from apache_beam.options.pipeline_options import PipelineOptions

    args = shlex.split(extra_args or "")
    if runner == "DirectRunner":
        return PipelineOptions(args, runner=runner, direct_num_workers=num_workers, direct_running_mode=running_mode)
    return PipelineOptions(args, runner=runner)


@contextlib.contextmanager
def _private_tempdir(path):
    """This process's temporary files go to `path`, removed afterwards: Beam's portable DirectRunner makes a
    `beam-temp*` folder in the system's temporary folder at every run and never removes it."""
    os.makedirs(path, exist_ok=True)
    previous, tempfile.tempdir = tempfile.tempdir, path
    try:
        yield
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(path, ignore_errors=True)


def run(planned, settings, class_ids, staging, options):
    """Runs the pipeline over `planned` (key, task) pairs; shards and sidecars appear under `staging`."""
    import apache_beam as beam

    progress_dir = os.path.join(staging, ".progress")
    os.makedirs(progress_dir, exist_ok=True)
    with _private_tempdir(os.path.join(staging, ".beam-tmp")), beam.Pipeline(options=options) as root:
        (root
         | "Tasks" >> beam.Create(planned)
         | "Spread" >> beam.Reshuffle()
         | "Convert" >> beam.FlatMap(convert_task, settings, class_ids, progress_dir)
         | "Shards" >> beam.GroupByKey()
         | "Write" >> beam.Map(write_shard, staging))


def tasks_done(staging):
    """Tasks counted so far by the workers' progress files."""
    folder = os.path.join(staging, ".progress")
    total = 0
    for name in os.listdir(folder) if os.path.isdir(folder) else ():
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(folder, name)) as file:
                total += int(file.read() or 0)
    return total


@contextlib.contextmanager
def beam_output_to(log_path):
    """Sends everything written to stderr (Beam's and its workers' logging) to `log_path`;
    yields a stream that still reaches the user's terminal for progress lines."""
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            terminal.close()

"""Time to start or resume training on a big dataset: the record check with and without its cache.

    PYTHONPATH=. python -m bench.data_startup --work_dir=/tmp/startup             # 100,000 records
    PYTHONPATH=. python -m bench.data_startup --work_dir=/tmp/startup --records=5000 --notrain

Writes --records records (a few real 32^3 records with a 32x32 PNG photo each, repeated) into
--shards shards in --work_dir/data, dated an hour back (a dataset written before the run), then times,
in one process, what a 3D-VAE-GAN start checks (find_records and the scan of every record):
  full scan   data.scan_records, what every start did before the cache (the baseline)
  cold        scan_cache.scan_records without a cache: the full scan, then the cache is written
  warm        scan_cache.scan_records with the cache valid (median of --repeats)
  one changed the same after a good record was appended to one shard (it alone is read)
and, unless --notrain, `python train.py` from process start to its line `starting at step 0 of N`
(cold: no cache; warm: cache valid) and to `resuming from ... at step 1 of 2` (a run of 1 step
resumed), beside the time to import keras_vaegan.training alone. Prints the times and
`RATIO <name> <value>` lines, value = baseline time / our time (above 1: we are faster); the baseline
is the full scan, or for train.py its start without a cache. Deletes --work_dir at the end unless --keep.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from absl import app, flags  # noqa: E402

from vaegan_utils.cli import parse_flags  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTED = re.compile(r"(starting|resuming from \S+) at step \d+ of \d+")
TRAIN_FLAGS = ("--model_type=vaegan", "--resolution=32", "--image_size=64", "--batch_size=8",
               "--checkpoint_every=1000", "--sample_every=1000", "--mesh_summary_every=0")

FLAGS = flags.FLAGS
flags.DEFINE_string("work_dir", None, "New folder for the generated dataset and the training runs.")
flags.DEFINE_integer("records", 100_000, "Records in the generated dataset.")
flags.DEFINE_integer("shards", 100, "Shards they are written to.")
flags.DEFINE_integer("repeats", 5, "Timed warm starts (the median is reported).")
flags.DEFINE_bool("train", True, "Also time `python train.py` to its first step.")
flags.DEFINE_bool("keep", False, "Keep the generated dataset and runs.")
flags.DEFINE_integer("timeout", 1800, "Seconds a train.py start may take before the bench gives up.")


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def examples(count=8):
    """`count` distinct records: a random box at 32^3 and a 32x32 PNG gradient each."""
    import numpy as np
    import tensorflow as tf

    from keras_vaegan.data import encode_example

    rng = np.random.default_rng(0)
    found = []
    for index in range(count):
        grid = np.zeros((32, 32, 32), bool)
        low = rng.integers(0, 16, 3)
        high = low + rng.integers(4, 16, 3)
        grid[low[0]:high[0], low[1]:high[1], low[2]:high[2]] = True
        ramp = np.linspace(0, 255, 32, dtype=np.uint8)
        photo = np.stack([np.tile(ramp, (32, 1)), np.tile(ramp[:, None], (1, 32)), np.full((32, 32), 40 * index)], -1)
        image = tf.io.encode_png(photo.astype(np.uint8)).numpy()
        found.append(encode_example(grid, image=image, class_name=f"c{index % 4}", class_id=index % 4,
                                    source_id=f"bench/{index}"))
    return found


def backdate(path):
    """Dates `path` an hour back: a dataset written before the run (the cache keeps no file written within
    the last seconds)."""
    earlier = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(earlier, earlier))


def append_record(work, shard):
    """Appends one more good record to `shard`."""
    import tensorflow as tf

    one = os.path.join(work, "one.tfrecord")
    with tf.io.TFRecordWriter(one) as writer:
        writer.write(examples(1)[0])
    with open(one, "rb") as file, open(shard, "ab") as out:
        out.write(file.read())


def write_dataset(folder, records, shards):
    """The generated shards, dated an hour back; returns their total size in bytes."""
    import tensorflow as tf

    os.makedirs(folder)  # and the work folder, which must be new
    serialized = examples()
    written = 0
    for shard in range(shards):
        path = os.path.join(folder, f"train.tfrecord-{shard:05d}-of-{shards:05d}")
        count = records // shards + (shard < records % shards)
        with tf.io.TFRecordWriter(path) as writer:
            for index in range(count):
                writer.write(serialized[(written + index) % len(serialized)])
        written += count
    for name in os.listdir(folder):
        backdate(os.path.join(folder, name))
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))


def start_scan(folder, cached):
    """What a 3D-VAE-GAN start checks: the record files, then every record (from the cache if `cached`)."""
    from keras_vaegan import data, scan_cache

    files = data.find_records(folder)
    if cached:
        return scan_cache.scan_records(folder, files, 32, True)
    return data.scan_records(files, 32, True)


def same(scan, other):
    return (scan.good, scan.bad, scan.num_classes, scan.readable) == (
        other.good, other.bad, other.num_classes, other.readable)


def seconds_to_line(command, log_path):
    """Seconds from starting `command` to its first line STARTED matches (then it is killed), and that line."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=ROOT)
    start = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            for line in process.stdout:
                if STARTED.search(line):
                    return time.perf_counter() - start, line.strip().replace(os.path.dirname(log_path) + "/", "")
                if time.perf_counter() - start > FLAGS.timeout:
                    break
        finally:
            process.kill()
            process.wait()
    with open(log_path) as log:
        raise RuntimeError(f"{' '.join(command)}: no start line; its stderr ends:\n{log.read()[-2000:]}")


def train_command(folder, model_dir, steps):
    return [sys.executable, os.path.join(ROOT, "train.py"), f"--data_dir={folder}", f"--model_dir={model_dir}",
            f"--train_steps={steps}", *TRAIN_FLAGS]


def train_starts(work, folder, rows):
    """Times `python train.py` to its first step: cold, warm, resumed; appends rows, returns the three times."""
    from keras_vaegan.scan_cache import CACHE_FILE

    log = os.path.join(work, "train.log")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import keras_vaegan.training"], cwd=ROOT, check=True,
                   env=dict(os.environ, PYTHONPATH=ROOT))
    imported = time.perf_counter() - start
    rows.append(("python -c 'import keras_vaegan.training'", imported))
    os.remove(os.path.join(folder, CACHE_FILE))
    cold, line = seconds_to_line(train_command(folder, os.path.join(work, "cold"), 1000), log)
    rows.append((f"train.py to '{line}', no cache", cold))
    warm, line = seconds_to_line(train_command(folder, os.path.join(work, "warm"), 1000), log)
    rows.append((f"train.py to '{line}', cache valid", warm))
    resumed_dir = os.path.join(work, "resumed")
    subprocess.run(train_command(folder, resumed_dir, 1), cwd=ROOT, check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=ROOT))
    resumed, line = seconds_to_line(train_command(folder, resumed_dir, 2), log)
    rows.append((f"train.py to '{line}', cache valid", resumed))
    return cold, warm, resumed


def main(argv):
    del argv
    if not FLAGS.work_dir:
        raise app.UsageError("--work_dir is required")
    from keras_vaegan import data

    work = os.path.abspath(FLAGS.work_dir)
    if os.path.exists(work):
        raise app.UsageError(f"--work_dir: {work} exists; give a new folder (the bench deletes it at the end)")
    folder = os.path.join(work, "data")
    rows, ratios = [], []
    print(f"bench.data_startup  {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC  cpus {os.cpu_count()}  "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    try:
        size, seconds = timed(write_dataset, folder, FLAGS.records, FLAGS.shards)
        print(f"wrote {FLAGS.records} records in {FLAGS.shards} shards, {size / 2**20:.0f} MiB, in {seconds:.1f} s")
        data.scan_file(data.find_records(folder)[-1], 32, True)  # TensorFlow's first ops, not timed
        full, full_time = timed(start_scan, folder, False)
        rows.append(("full scan (every start before the cache)", full_time))
        cold, cold_time = timed(start_scan, folder, True)
        rows.append(("cold: no cache, full scan + cache written", cold_time))
        warm_times = []
        for _ in range(FLAGS.repeats):
            warm, seconds = timed(start_scan, folder, True)
            warm_times.append(seconds)
            assert same(warm, full)
        warm_time = statistics.median(warm_times)
        rows.append((f"warm: cache valid (median of {FLAGS.repeats})", warm_time))
        shard = data.find_records(folder)[0]
        append_record(work, shard)
        changed, changed_time = timed(start_scan, folder, True)
        rows.append(("one shard changed (a record appended)", changed_time))
        backdate(shard)  # so the cache train.py writes keeps it, as it keeps the others
        assert same(cold, full) and changed.good == full.good + 1, (cold.good, changed.good, full.good)
        ratios += [("startup_cold_vs_full_scan", full_time / cold_time),
                   ("startup_warm_vs_full_scan", full_time / warm_time),
                   ("startup_one_shard_changed_vs_full_scan", full_time / changed_time)]
        if FLAGS.train:
            train_cold, train_warm, train_resumed = train_starts(work, folder, rows)
            ratios += [("train_py_start_warm_vs_cold", train_cold / train_warm),
                       ("train_py_resume_warm_vs_cold", train_cold / train_resumed)]
    finally:
        if not FLAGS.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'measurement':84s} {'seconds':>9s}")
    for name, seconds in rows:
        print(f"{name:84s} {seconds:9.4f}")  # a start with a valid cache takes milliseconds
    print()
    for name, value in ratios:
        print(f"RATIO {name} {value:.2f}")


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: parse_flags(FLAGS, argv))

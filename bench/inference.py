"""Batch-1 inference latency of the generator and the image encoder: Keras, SavedModel and TFLite variants.

    PYTHONPATH=. python -m bench.inference                 # full run
    PYTHONPATH=. python -m bench.inference --quick         # smoke test: 32^3 generator, 64x64 encoder, 3 rounds
    PYTHONPATH=. python -m bench.inference --resolutions=64 --encoder_sizes= --runs=30

Models (random weights, seeded): Generator at each --resolutions, ImageEncoder
at each --encoder_sizes. Variants of each:
  keras       `model(x, training=False)` in a tf.function
  savedmodel  `model.export(...)` loaded with `tf.saved_model.load`, its
              serving_default signature: the baseline
  tflite_plain_<q>_<runtime>    the SavedModel converted to TFLite
  tflite_xnnpack_<q>_<runtime>  generators only: export.xnnpack_generator's
              2D re-formulation, converted the same way
with q in fp32 / fp16 / int8 (post-training, float fallback) and runtime `tf`
(tf.lite.Interpreter) or `litert` (ai_edge_litert.interpreter.Interpreter),
both with num_threads=--threads and their default XNNPACK delegate;
TensorFlow runs with --threads intra-op threads.

All variants of a model are built and warmed up first; then every round
calls each once, the order rotating every round, so they share the machine's
load. Before every timed call the benchmark pauses (--pause_ms): without
the pause a TFLite call measured up to 3x slower after a TensorFlow one
(idle threads of the previous variant still spinning, we guess). Around every round the benchmark reads /proc/stat: a round
is quiet when other processes used under 15% of the CPUs. Latency: median
over the quiet rounds when there are at least 3 of them, else over all
rounds (the table says which); throughput: calls per second over the same
rounds (batch 1). `max|diff|` compares each output with Keras' on the
same input. Output: a table per model, then `RATIO <model>_<variant> <value>`
with value = SavedModel time / variant time (above 1: faster than the SavedModel).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ info lines

import platform
import statistics
import sys
import tempfile
import time
from importlib.metadata import version

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging
from ai_edge_litert.interpreter import Interpreter

from export.xnnpack_generator import (
    QUANTIZATIONS,
    convert_to_tflite,
    runs_entirely_on_xnnpack,
    tflite_from_saved_model,
    tflite_op_types,
    xnnpack_friendly_generator,
)
from keras_vaegan.encoder import ImageEncoder
from keras_vaegan.generator import Generator
from vaegan_utils.cli import fail, parse_flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("threads", 2, "Threads of TensorFlow (intra-op) and of the TFLite interpreters.")
flags.DEFINE_integer("runs", 20, "Timed rounds; every round calls each variant once.", lower_bound=1)
flags.DEFINE_integer("warmup", 3, "Untimed calls of each variant before the rounds.", lower_bound=1)
flags.DEFINE_list("resolutions", ["32", "64"], "Generator resolutions (32, 64).")
flags.DEFINE_list("encoder_sizes", ["64", "256"], "ImageEncoder image sizes (multiples of 32).")
flags.DEFINE_list("quantizations", ["float32", "float16", "int8"], "TFLite quantizations.")
flags.DEFINE_list("runtimes", ["tf", "litert"], "TFLite interpreters: tf (tf.lite), litert (ai_edge_litert).")
flags.DEFINE_integer("calibration_samples", 8, "Representative inputs for int8 quantization.")
flags.DEFINE_integer("latent_dim", 200, "Latent size of the generator and encoder.")
flags.DEFINE_integer("seed", 0, "Seed of weights and inputs.")
flags.DEFINE_float("pause_ms", 20, "Untimed pause before every timed call (lets the previous variant's threads idle).")
flags.DEFINE_bool("quick", False, "Smoke test: --resolutions=32 --encoder_sizes=64 --runs=3 --warmup=1 unless given.")

SHORT = {"float32": "fp32", "float16": "fp16", "int8": "int8"}
RUNTIMES = ("tf", "litert")
QUIET = 0.15  # share of all CPUs used by other processes below which a round counts as quiet
MIN_QUIET = 3  # quiet rounds needed for the times to come from quiet rounds only


def flag_problem():
    """The first bad list flag as `--flag: problem`, or None."""
    for size in FLAGS.encoder_sizes:
        if not size.isdigit() or int(size) == 0 or int(size) % 32:
            return f"--encoder_sizes: {size!r} is not a positive multiple of 32"
    allowed = {"resolutions": ("32", "64"), "quantizations": QUANTIZATIONS, "runtimes": RUNTIMES}
    for name, choices in allowed.items():
        for value in FLAGS[name].value:
            if value not in choices:
                return f"--{name}: {value!r} is not one of {', '.join(choices)}"
    return None


def cpu_snapshot():
    """(busy jiffies of all CPUs, all jiffies, this process' CPU seconds) for measuring other processes' load."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    times = os.times()
    return sum(fields) - idle, sum(fields), times.user + times.system


def others_busy(before, after):
    """Share of all CPUs that other processes used between two snapshots."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = (after[1] - before[1]) / ticks
    others = (after[0] - before[0]) / ticks - (after[2] - before[2])
    return max(0.0, others / total) if total > 0 else 0.0


class Variant:
    """One way of running a model: `call()` runs it once on the fixed input and returns its outputs as numpy."""

    def __init__(self, name, call, size_mb=None, whole_xnnpack=None, op_types=None):
        self.name, self.call = name, call
        self.size_mb, self.whole_xnnpack, self.op_types = size_mb, whole_xnnpack, op_types
        self.times = []
        self.outputs = None
        self.max_diff = None


def keras_variant(model, inputs):
    run = tf.function(lambda x: model(x, training=False))
    tensor = tf.constant(inputs)
    return Variant("keras", lambda: [o.numpy() for o in tf.nest.flatten(run(tensor))])


def savedmodel_variant(folder, inputs):
    signature = tf.saved_model.load(folder).signatures["serving_default"]
    tensor = tf.constant(inputs)
    return Variant("savedmodel", lambda: [v.numpy() for _, v in sorted(signature(tensor).items())])


def tflite_variant(name, flatbuffer, runtime, inputs):
    """A TFLite interpreter variant, its outputs in the SavedModel's (sorted names) order, i.e. Keras' order."""
    if runtime == "tf":
        interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=FLAGS.threads)
    else:
        interpreter = Interpreter(model_content=flatbuffer, num_threads=FLAGS.threads)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    outputs = sorted(interpreter.get_output_details(), key=lambda d: d["name"])

    def call():
        interpreter.set_tensor(input_index, inputs)
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"]) for d in outputs]

    whole = runs_entirely_on_xnnpack(flatbuffer, FLAGS.threads) if runtime == "litert" else None
    return Variant(f"{name}_{runtime}", call, len(flatbuffer) / 2**20, whole, tflite_op_types(flatbuffer))


def build_variants(model, inputs, signature, representative, xnnpack_model=None):
    """Keras, SavedModel and TFLite variants of one model (conversion included, not timed)."""
    variants = [keras_variant(model, inputs)]
    with tempfile.TemporaryDirectory() as folder:
        saved_model = os.path.join(folder, "saved_model")
        model.export(saved_model, format="tf_saved_model", verbose=False, input_signature=signature)
        variants.append(savedmodel_variant(saved_model, inputs))
        for quantization in FLAGS.quantizations:
            plain = tflite_from_saved_model(saved_model, quantization, representative)
            for runtime in FLAGS.runtimes:
                name = f"tflite_plain_{SHORT[quantization]}"
                variants.append(tflite_variant(name, plain, runtime, inputs))
            if xnnpack_model is not None:
                friendly = convert_to_tflite(xnnpack_model, quantization, representative)
                for runtime in FLAGS.runtimes:
                    name = f"tflite_xnnpack_{SHORT[quantization]}"
                    variants.append(tflite_variant(name, friendly, runtime, inputs))
    return variants


def generator_variants(resolution, rng):
    generator = Generator(resolution, FLAGS.latent_dim)
    generator.build((1, FLAGS.latent_dim))
    z = rng.normal(size=(1, FLAGS.latent_dim)).astype("float32")
    samples = [rng.normal(size=(1, FLAGS.latent_dim)).astype("float32") for _ in range(FLAGS.calibration_samples)]
    signature = [tf.TensorSpec((1, FLAGS.latent_dim), tf.float32)]
    friendly = xnnpack_friendly_generator(generator)
    return build_variants(generator, z, signature, lambda: ([s] for s in samples), friendly)


def encoder_variants(image_size, rng):
    encoder = ImageEncoder(image_size, FLAGS.latent_dim)
    shape = (1, image_size, image_size, 3)
    encoder.build(shape)
    image = rng.random(shape).astype("float32")
    samples = [rng.random(shape).astype("float32") for _ in range(FLAGS.calibration_samples)]
    return build_variants(encoder, image, [tf.TensorSpec(shape, tf.float32)], lambda: ([s] for s in samples))


def measure(variants):
    """Warm-up, then --runs interleaved rounds; fills each variant's times (s) and max|diff| vs Keras.

    Returns the share of all CPUs other processes used during each round.
    """
    for variant in variants:
        for _ in range(FLAGS.warmup):
            outputs = variant.call()
        variant.outputs = outputs
    reference = variants[0].outputs
    for variant in variants:
        # reshape: the re-formulated generator's (1, R, R, R) against the Generator's (1, R, R, R, 1)
        pairs = zip(variant.outputs, reference)
        diffs = [np.abs(np.reshape(a, np.shape(b)).astype("float64") - b).max() for a, b in pairs]
        variant.max_diff = max(diffs) if len(variant.outputs) == len(reference) else float("nan")
    busy = []
    for round_index in range(FLAGS.runs):
        shift = round_index % len(variants)
        before = cpu_snapshot()
        for variant in variants[shift:] + variants[:shift]:
            time.sleep(FLAGS.pause_ms / 1e3)
            start = time.perf_counter()
            variant.call()
            variant.times.append(time.perf_counter() - start)
        busy.append(others_busy(before, cpu_snapshot()))
    return busy


def print_table(model_name, variants, busy, seconds):
    """The model's table and op types; returns its (name, SavedModel time / variant time) pairs.

    Times are medians over the quiet rounds (others used < QUIET of the CPUs)
    when there are at least MIN_QUIET of them, else over all rounds.
    """
    quiet = [i for i, share in enumerate(busy) if share < QUIET]
    rounds = quiet if len(quiet) >= MIN_QUIET else list(range(len(busy)))
    source = "quiet rounds" if rounds is quiet else "all rounds (too few quiet)"

    def median(variant):
        return statistics.median(variant.times[i] for i in rounds)

    baseline = median(next(v for v in variants if v.name == "savedmodel"))
    print(
        f"\n{model_name}  ({len(busy)} rounds in {seconds:.0f} s, {len(quiet)} quiet; other processes used"
        f" {statistics.median(busy):.0%} of the CPUs (median round); times from {source})"
    )
    header = f"{'variant':<28} {'median ms':>9} {'min ms':>8} {'max ms':>8} {'calls/s':>8} {'MB':>6} {'xnnpack':>8}"
    print(f"{header} {'max|diff|':>9} {'vs SavedModel':>13}")
    for v in variants:
        times = [v.times[i] for i in rounds]
        size = f"{v.size_mb:.1f}" if v.size_mb is not None else "-"
        whole = {None: "-", True: "all", False: "partial"}[v.whole_xnnpack]
        print(
            f"{v.name:<28} {median(v) * 1e3:>9.2f} {min(times) * 1e3:>8.2f} {max(times) * 1e3:>8.2f}"
            f" {len(times) / sum(times):>8.1f} {size:>6} {whole:>8} {v.max_diff:>9.1e} {baseline / median(v):>13.2f}"
        )
    files = {v.name.rsplit("_", 1)[0]: v.op_types for v in variants if v.op_types}
    for name, ops in files.items():
        print(f"  {name} ops: {' '.join(ops)}")
    return [(f"{model_name}_{v.name}", baseline / median(v)) for v in variants if v.name != "savedmodel"]


def main(argv):
    del argv
    if FLAGS.quick:
        for name, value in (("resolutions", ["32"]), ("encoder_sizes", ["64"]), ("runs", 3), ("warmup", 1)):
            if not FLAGS[name].present:
                FLAGS[name].value = value
    problem = flag_problem()
    if problem:
        fail(problem)
    logging.set_verbosity(logging.WARNING)
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    keras.utils.set_random_seed(FLAGS.seed)
    rng = np.random.default_rng(FLAGS.seed)
    print(
        f"bench.inference  {time.strftime('%Y-%m-%d %H:%M:%S')}  python {platform.python_version()}  cpus {os.cpu_count()}"
        f"  threads {FLAGS.threads}  rounds {FLAGS.runs}  warm-up {FLAGS.warmup}"
    )
    print(f"tensorflow {tf.__version__} keras {keras.__version__} ai-edge-litert {version('ai-edge-litert')}")
    print("Load average (1 min) at start: %.1f" % os.getloadavg()[0])
    jobs = [(f"generator_{r}", lambda r=int(r): generator_variants(r, rng)) for r in FLAGS.resolutions]
    jobs += [(f"encoder_{s}", lambda s=int(s): encoder_variants(s, rng)) for s in FLAGS.encoder_sizes]
    ratios = []
    for model_name, build in jobs:
        print(f"[{model_name}: building, converting, warming up]", file=sys.stderr, flush=True)
        variants = build()
        start = time.perf_counter()
        busy = measure(variants)
        ratios += print_table(model_name, variants, busy, time.perf_counter() - start)
        sys.stdout.flush()
    print(
        "\nmedian ms: median over the rounds used of one batch-1 call (set input, run, read outputs); calls/s: timed calls"
        " / their total time; MB: .tflite size; xnnpack: whether ai_edge_litert's XNNPACK delegate takes the whole"
        " graph; max|diff|: largest difference from Keras' outputs on the same input; vs SavedModel: SavedModel"
        " median / variant median."
    )
    print("Load average (1 min) at end: %.1f\n" % os.getloadavg()[0])
    for name, value in ratios:
        print(f"RATIO {name} {value:.3f}")


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: parse_flags(FLAGS, argv))

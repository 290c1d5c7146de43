"""Samples/s of keras_vaegan's real train steps (model.fit) against the same step in PyTorch.

    PYTHONPATH=. python -m bench.train_step                      # full run (15-25 min on 2 shared cores)
    PYTHONPATH=. python -m bench.train_step --quick              # smoke test (< 2 min)
    PYTHONPATH=. python -m bench.train_step --configs=gan_32 --precisions=float32 --rounds=3 --gate_patterns=half

Configs: gan_32 / vaegan_32 (32^3, batch 32, images 64x64) and gan_64 /
vaegan_64 (64^3, batch 4, images 128x128), each in float32 and mixed_bfloat16.

First (--verify, needs torch) the PyTorch reference gets the Keras weights and
the Keras noise and must reproduce the Keras losses of two train steps; this
also picks the batch layout the library uses (see bench/torch_reference.py).

Each (config, framework, precision) then runs in its own worker process, so
peak RSS is per variant and frameworks never share thread pools. A config's
workers start together and build and warm up (tracing and oneDNN primitive
creation are not timed); then the parent asks each in turn to run `--steps`
train steps, rotating the order every round, so ours and the baseline run
under similar machine load. Ours: `set_precision` + `build_model` inside the
scope of the strategy `--distribution_strategy=one_device` trains under (on
this CPU TensorFlow's default strategy), in a process on the malloc train.py
runs on (jemalloc where installed, see vaegan_utils.allocator; glibc's for
PyTorch, as its port runs), and one `model.fit` over an in-memory
repeated tf.data dataset whose callback times each round (gate, metrics and
strategy included). Baseline: bench/torch_reference.py.

Each is timed under two D gate patterns, the same fixed sequence in both
frameworks (--gate_patterns): `open`, D steps every step; `half`, D steps on
even steps only, as when D's accuracy gate closes on half the steps (in the
demo it closes on most). A closed step skips D's backward pass and update in
keras_vaegan and in the reference, which does what the PyTorch port does:
`d_loss.backward()` and `optimizer.step()` only when the gate is open. A round
of the `half` pattern is an even number of steps, one open for each closed.

Around every measurement the parent reads /proc/stat to know how much CPU
other processes took. PyTorch's OpenMP threads slow down far more than
TensorFlow's thread pool when another process holds a core, so a round counts
as quiet when others used under 15% of the CPUs during both measurements, and
a comparison's RATIO is its median over quiet rounds once there are 3 of them
(up to --max_extra_rounds rounds are added to get them), else over all rounds.

Output: a table, then `RATIO <name> <baseline time / our time>` lines (above 1
means we are faster).
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from vaegan_utils.allocator import allocator_environment
from vaegan_utils.cli import fail, parse_flags

CONFIGS = {
    # name: (model_type, resolution, batch_size)
    "gan_32": ("gan", 32, 32),
    "gan_64": ("gan", 64, 4),
    "vaegan_32": ("vaegan", 32, 32),
    "vaegan_64": ("vaegan", 64, 4),
}
# Train steps per timed round: short rounds, many of them, pair ours and the baseline under similar load.
DEFAULT_STEPS = {"gan_32": 2, "gan_64": 1, "vaegan_32": 1, "vaegan_64": 1}
PRECISIONS = ("float32", "mixed_bfloat16")
SHORT = {"float32": "fp32", "mixed_bfloat16": "bf16"}
# (ours, baseline) precisions compared, and the issue's goals for baseline time / our time.
COMPARISONS = (("float32", "float32"), ("mixed_bfloat16", "mixed_bfloat16"), ("mixed_bfloat16", "float32"))
QUIET = 0.15  # share of all CPUs used by other processes below which a round counts as quiet
MIN_QUIET = 3  # quiet rounds a comparison needs for its RATIO to come from quiet rounds only
# Gate patterns: D steps on every n-th train step.
GATE_PATTERNS = {"open": 1, "half": 2}
GOALS = {
    "open": {"fp32_vs_pytorch_fp32": 1.15, "bf16_vs_pytorch_bf16": 1.0, "bf16_vs_pytorch_fp32": 1.5},
    "half": {"fp32_vs_pytorch_fp32": 1.3, "bf16_vs_pytorch_bf16": 1.1},
}
PREFIX = "@@ "

FLAGS = flags.FLAGS
flags.DEFINE_list("configs", list(CONFIGS), f"Subset of {', '.join(CONFIGS)}.")
flags.DEFINE_list("precisions", list(PRECISIONS), "Subset of float32, mixed_bfloat16.")
flags.DEFINE_integer("batch_size", 0, "Overrides every config's batch size (0: 32 at 32^3, 4 at 64^3).")
flags.DEFINE_list("gate_patterns", list(GATE_PATTERNS), "Subset of open (D steps every step), half (D steps "
                  "on even steps).")
flags.DEFINE_integer("steps", 0, "Train steps per timed round (0: a per-config default; doubled for the half "
                     "gate pattern).")
flags.DEFINE_integer("rounds", 6, "Timed rounds per variant, interleaved.")
flags.DEFINE_integer("max_extra_rounds", 3, "Rounds added to a config while a comparison has < 3 quiet rounds.")
flags.DEFINE_integer("warmup_steps", 3, "Untimed steps after building (tracing, oneDNN primitives).")
flags.DEFINE_integer("image_size_32", 64, "VAE-GAN image size at 32^3.")
flags.DEFINE_integer("image_size_64", 128, "VAE-GAN image size at 64^3.")
flags.DEFINE_integer("threads", 2, "torch.set_num_threads for the baseline.")
flags.DEFINE_integer("inter_op_threads", 0, "Ours: train.py's --inter_op_threads (0: TensorFlow's default).")
flags.DEFINE_integer("seed", 0, "Seed of weights, noise and data.")
flags.DEFINE_bool("quick", False, "Smoke test: 32^3 configs at batch 4, 1 round of 1 step, no verification.")
flags.DEFINE_bool("fit_per_round", False, "Ours: time one model.fit call per round (with its setup cost).")
flags.DEFINE_bool("verify", True, "First check the PyTorch reference against Keras (shapes, losses).")
flags.DEFINE_list("verify_precisions", ["float32"], "Precisions checked by --verify (float32 exactly).")
flags.DEFINE_integer("verify_batch_size", 4, "Batch size of the verification steps.")
flags.DEFINE_bool("baseline", True, "Run the PyTorch baseline when torch is importable.")
flags.DEFINE_enum("d_batches", "separate", ["separate", "concat"],
                  "Baseline: real and fake through D as two batches or one (--verify detects keras_vaegan's).")
flags.DEFINE_enum("g_batches", "separate", ["separate", "concat"],
                  "Baseline VAE-GAN: prior and posterior z through G as two batches or one (--verify detects it).")
flags.DEFINE_string("worker", None, "Internal: framework,config,precision of a worker process.")
flags.DEFINE_bool("verify_worker", False, "Internal: run the verification in this process.")


def batch_size_of(config_name):
    return FLAGS.batch_size or CONFIGS[config_name][2]


def image_size(config_name):
    resolution = CONFIGS[config_name][1]
    return FLAGS.image_size_32 if resolution == 32 else FLAGS.image_size_64


def busy_cpu_seconds():
    """CPU seconds all processes spent busy so far (from /proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def send(message):
    sys.stdout.write(PREFIX + json.dumps(message) + "\n")
    sys.stdout.flush()


def random_data(config_name, seed, batches=2, batch_size=None):
    """Random occupancy (about 10% filled) and images in [0, 1), channels last, float32."""
    import numpy as np

    model_type, resolution, _ = CONFIGS[config_name]
    batch_size = batch_size or batch_size_of(config_name)
    rng = np.random.default_rng(seed)
    n = batches * batch_size
    voxels = (rng.random((n, resolution, resolution, resolution, 1)) < 0.1).astype("float32")
    images = None
    if model_type == "vaegan":
        size = image_size(config_name)
        images = rng.random((n, size, size, 3), dtype="float32")
    return voxels, images


# ----------------------------------------------------------------------------- Keras worker

def build_keras(config_name, precision, seed):
    from keras_vaegan.config import ModelConfig, TrainConfig
    from keras_vaegan.distribute import make_strategy, set_inter_op_threads
    from keras_vaegan.models import build_model, set_precision

    model_type, resolution, _ = CONFIGS[config_name]
    batch_size = batch_size_of(config_name)
    model_config = ModelConfig(
        model_type=model_type, resolution=resolution, image_size=image_size(config_name)
    ).validate()
    prior = {} if model_type == "gan" else {"latent_prior": "normal"}  # the VAE-GAN's KL term needs N(0, I)
    train_config = TrainConfig(
        batch_size=batch_size, precision=precision, d_accuracy_threshold=1.0, seed=seed,
        inter_op_threads=FLAGS.inter_op_threads, **prior
    ).validate()
    set_inter_op_threads(train_config)  # as training sets it
    set_precision(precision)
    with make_strategy("one_device").scope():
        model = build_model(model_config, train_config)
    return model


def follow_gate_pattern(model):
    """Makes D step on every n-th step, n in the returned variable (1: every step), instead of by accuracy."""
    import tensorflow as tf

    every = tf.Variable(1, dtype=tf.int64, trainable=False)
    model.gate_open = lambda accuracy: tf.equal(model.step.value % every, 0)
    return every


def keras_dataset(config_name, seed):
    import tensorflow as tf

    batch_size = batch_size_of(config_name)
    voxels, images = random_data(config_name, seed)
    elements = voxels if images is None else (images, voxels)
    dataset = tf.data.Dataset.from_tensor_slices(elements).batch(batch_size, drop_remainder=True)
    return dataset.cache().repeat().prefetch(2)


def keras_worker(config_name, precision):
    """Builds, warms up, then times rounds of `model.fit` steps as the parent asks.

    By default one `fit` call spans all rounds: a callback reports each round's
    time at its last step's end and blocks until the next command, so the
    timed steps are steady-state fit steps (in training, fit runs
    `checkpoint_every` steps per call). --fit_per_round instead times a whole
    `fit(steps_per_epoch=steps)` call per round, including its per-call setup
    (a new distributed iterator, its first fetch, callbacks).
    """
    import keras
    import numpy as np

    model = build_keras(config_name, precision, FLAGS.seed)
    every = follow_gate_pattern(model)
    dataset = keras_dataset(config_name, FLAGS.seed)
    model.fit(dataset, epochs=1, steps_per_epoch=FLAGS.warmup_steps, verbose=0)
    send({"ready": True})

    def finish(logs):
        send({"peak_rss_mb": peak_rss_mb(), "logs": {k: float(np.asarray(v)) for k, v in logs.items()}})

    if FLAGS.fit_per_round:
        logs = {}
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "finish":
                return finish(logs)
            every.assign(GATE_PATTERNS[command["pattern"]])
            start, cpu = time.perf_counter(), cpu_seconds()
            history = model.fit(dataset, epochs=1, steps_per_epoch=command["steps"], verbose=0)
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
            logs = {k: v[-1] for k, v in history.history.items()}
            send({"seconds": seconds, "cpu_seconds": cpu, "steps": command["steps"]})
        return

    class Rounds(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.remaining = self.steps = 0
            self.start = self.cpu = None
            self.logs = {}
            self.next_command()

        def next_command(self):
            command = json.loads(sys.stdin.readline() or '{"op": "finish"}')
            if command["op"] == "finish":
                return False
            self.remaining = self.steps = command["steps"]
            every.assign(GATE_PATTERNS[command["pattern"]])
            self.start = None
            return True

        def on_train_batch_begin(self, batch, logs=None):
            if self.start is None:
                self.start, self.cpu = time.perf_counter(), cpu_seconds()

        def on_train_batch_end(self, batch, logs=None):
            self.remaining -= 1
            if self.remaining == 0:  # the step has run: TensorFlow executes functions synchronously
                seconds, cpu = time.perf_counter() - self.start, cpu_seconds() - self.cpu
                send({"seconds": seconds, "cpu_seconds": cpu, "steps": self.steps})
                self.logs = logs or {}
                if not self.next_command():
                    self.model.stop_training = True

    rounds = Rounds()  # blocks until the first command
    if rounds.remaining:
        model.fit(dataset, epochs=1, steps_per_epoch=10**9, verbose=0, callbacks=[rounds])
    finish(rounds.logs)


# ----------------------------------------------------------------------------- PyTorch worker

def latent_prior(model_type):
    """The prior keras_vaegan uses for this model type (see build_keras)."""
    if model_type == "vaegan":
        return "normal"
    from keras_vaegan.config import TrainConfig

    return TrainConfig().latent_prior


def torch_worker(config_name, precision):
    import torch

    from bench import torch_reference

    torch.set_num_threads(FLAGS.threads)
    model_type, resolution, _ = CONFIGS[config_name]
    batch_size = batch_size_of(config_name)
    trainer = torch_reference.Trainer(
        model_type, resolution, image_size(config_name), precision=precision, d_accuracy_threshold=1.0,
        d_batches=FLAGS.d_batches, g_batches=FLAGS.g_batches, latent_prior=latent_prior(model_type), seed=FLAGS.seed,
    )
    voxels, images = random_data(config_name, FLAGS.seed)
    voxel_batches = torch.from_numpy(voxels).permute(0, 4, 1, 2, 3).contiguous().split(batch_size)
    image_batches = (
        [None] * len(voxel_batches)
        if images is None
        else torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().split(batch_size)
    )
    counter = [0]

    def run(steps, every=1):
        out = None
        for _ in range(steps):
            step = counter[0]
            counter[0] += 1
            i = step % len(voxel_batches)
            out = trainer.step(voxel_batches[i], image_batches[i], d_steps=step % every == 0)
        return {k: float(v) for k, v in out.items()}  # .item(): waits for the last step

    run(FLAGS.warmup_steps)
    send({"ready": True})
    logs = {}
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "run":
            start, cpu = time.perf_counter(), cpu_seconds()
            logs = run(command["steps"], GATE_PATTERNS[command["pattern"]])
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
            send({"seconds": seconds, "cpu_seconds": cpu, "steps": command["steps"]})
        elif command["op"] == "finish":
            send({"peak_rss_mb": peak_rss_mb(), "logs": logs})
            return


# ----------------------------------------------------------------------------- verification

LAYOUTS = {  # (d_batches, g_batches) of bench.torch_reference.Trainer; the first is keras_vaegan's current one
    "gan": (("separate", "separate"), ("concat", "separate")),
    "vaegan": (("separate", "separate"), ("separate", "concat"), ("concat", "separate"), ("concat", "concat")),
}
LOSS_NAMES = ("d_loss", "g_loss", "d_acc", "kl_loss", "recon_loss")


def _relative_error(keras_value, torch_value):
    return abs(keras_value - torch_value) / max(1.0, abs(keras_value))


def verify_worker():
    """Copies Keras weights into the PyTorch reference and compares shapes, outputs and two steps' losses.

    Noise is drawn as keras_vaegan draws it (stateless, seed (seed, 3 * step + stream))
    and handed to the PyTorch step, so float32 losses must agree to round-off.
    Every batch layout of the reference (real/fake through D in one batch or
    two; prior/posterior through G in one batch or two) is tried: the one that
    reproduces Keras is the one benchmarked. Under mixed_bfloat16 both compute
    in bfloat16 and the losses only need to be close.
    """
    import keras
    import numpy as np
    import tensorflow as tf
    import torch

    from bench import torch_reference
    from keras_vaegan.gan import POSTERIOR_STREAM, PRIOR_STREAM_D

    torch.set_num_threads(FLAGS.threads)
    results = []
    for config_name in FLAGS.configs:
        model_type, resolution, _ = CONFIGS[config_name]
        batch_size = FLAGS.verify_batch_size
        voxels, images = random_data(config_name, FLAGS.seed + 1, batches=1, batch_size=batch_size)
        t_voxels = torch.from_numpy(voxels).permute(0, 4, 1, 2, 3).contiguous()
        t_images = None if images is None else torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        for precision in FLAGS.precisions:
            model = build_keras(config_name, precision, FLAGS.seed)
            trainers = {}
            for d_batches, g_batches in LAYOUTS[model_type]:
                trainer = torch_reference.Trainer(
                    model_type, resolution, image_size(config_name), precision=precision, d_accuracy_threshold=1.0,
                    encoder_padding="tf_same", d_batches=d_batches, g_batches=g_batches,
                    latent_prior=model.latent_prior, seed=FLAGS.seed,
                )
                torch_reference.copy_from_keras(trainer.G, model.generator)
                torch_reference.copy_from_keras(trainer.D, model.discriminator)
                if model_type == "vaegan":
                    torch_reference.copy_from_keras(trainer.E, model.encoder)
                trainers[f"{d_batches},{g_batches}"] = trainer

            # Shapes and inference outputs of each network on the same inputs.
            trainer = next(iter(trainers.values()))
            z = np.random.default_rng(FLAGS.seed).random((batch_size, model.latent_dim), dtype="float32")
            outputs = {}
            for module in (trainer.G, trainer.D) + ((trainer.E,) if model_type == "vaegan" else ()):
                module.eval()
            with torch.no_grad(), trainer.autocast():
                t_g = trainer.G(torch.from_numpy(z)).float().permute(0, 2, 3, 4, 1).numpy()
                t_d = trainer.D(t_voxels).float().numpy()
            k_g = keras.ops.convert_to_numpy(model.generator(z, training=False))
            k_d = keras.ops.convert_to_numpy(model.discriminator(voxels, training=False))
            shape_ok = k_g.shape == t_g.shape and k_d.shape == t_d.shape
            outputs["G_out"] = float(np.abs(k_g - t_g).max())
            outputs["D_logit"] = float(np.abs(k_d - t_d).max())
            shapes = f"G {k_g.shape} D {k_d.shape}"
            if model_type == "vaegan":
                with torch.no_grad(), trainer.autocast():
                    t_m, t_v = trainer.E(t_images)
                k_m, k_v = (keras.ops.convert_to_numpy(t) for t in model.encoder(images, training=False))
                shape_ok = shape_ok and k_m.shape == tuple(t_m.shape) and k_v.shape == tuple(t_v.shape)
                outputs["E_mean"] = float(np.abs(k_m - t_m.float().numpy()).max())
                shapes += f" E {k_m.shape}x2"
            for module in (trainer.G, trainer.D) + ((trainer.E,) if model_type == "vaegan" else ()):
                module.train()

            # Two train steps with the same noise, for every layout of the reference.
            inputs = voxels if images is None else (images, voxels)
            dataset = tf.data.Dataset.from_tensors(inputs).repeat()
            history = model.fit(dataset, epochs=2, steps_per_epoch=1, verbose=0).history
            noise = []
            for step in range(2):
                def draw(stream, normal=False):
                    seed = tf.constant([FLAGS.seed, 3 * step + stream], tf.int64)
                    if normal:  # the posterior's noise, as VAEGAN3D._posterior_sample
                        z = tf.random.stateless_normal([batch_size, model.latent_dim], seed)
                    else:
                        z = model.sample_latent(batch_size, seed)
                    return torch.from_numpy(keras.ops.convert_to_numpy(z))

                noise.append(dict(
                    z_d=draw(PRIOR_STREAM_D), z_g=draw(PRIOR_STREAM_D),  # G's update reuses D's draw
                    noise=draw(POSTERIOR_STREAM, normal=True) if model_type == "vaegan" else None,
                ))
            candidates = {}
            for layout, trainer in trainers.items():
                checks = {}
                for step in range(2):
                    out = trainer.step(t_voxels, t_images, **noise[step])
                    for name in LOSS_NAMES:
                        if name in history:
                            checks[f"{name}@{step + 1}"] = (float(history[name][step]), float(out[name]))
                candidates[layout] = checks
            layout = min(candidates, key=lambda k: sum(_relative_error(*v) for v in candidates[k].values()))
            results.append({
                "config": config_name, "precision": precision, "shape_ok": shape_ok, "shapes": shapes,
                "outputs": outputs, "layout": layout, "checks": candidates[layout],
            })
            keras.backend.clear_session()
    send({"verify": results})


def print_verification(results):
    """Prints the comparison; returns ({config: layout}, ok) where ok is False if float32 disagrees."""
    print("Verification (Keras weights copied into the PyTorch reference; same inputs and noise; "
          f"batch {FLAGS.verify_batch_size}; keras/torch losses of two train steps):")
    ok_all, layouts = True, {}
    for result in results:
        fp32 = result["precision"] == "float32"
        # Step 1 runs on identical weights; step 2 follows one Adam update, where Keras (eps added to
        # sqrt(v)) and PyTorch (eps added to sqrt(v / (1 - beta2^t))) differ for tiny gradients.
        step_tolerances, output_tolerance = ((1e-3, 2e-2), 1e-4) if fp32 else ((5e-2, 1e-1), 5e-2)
        ok = result["shape_ok"]
        parts = []
        for name, value in result["outputs"].items():
            close = value <= output_tolerance * (10.0 if name == "E_mean" else 1.0)
            parts.append(f"max|diff| {name} {value:.1e}" + ("" if close else " (!)"))
            ok = ok and close
        for name, (keras_value, torch_value) in result["checks"].items():
            close = _relative_error(keras_value, torch_value) <= step_tolerances[name.endswith("@2")]
            parts.append(f"{name} {keras_value:.4g}/{torch_value:.4g}" + ("" if close else " (!)"))
            ok = ok and close
        if fp32 or result["config"] not in layouts:
            layouts[result["config"]] = result["layout"]
        ok_all = ok_all and (ok or not fp32)
        d_batches, g_batches = result["layout"].split(",")
        layout = f"D real/fake: {d_batches}" + (f", G prior/posterior: {g_batches}" if "vaegan" in result["config"]
                                                else "")
        print(f"  {result['config']:<10} {SHORT[result['precision']]}  {'ok' if ok else 'MISMATCH':<8} "
              f"{result['shapes']}; {layout}")
        for i in range(0, len(parts), 6):
            print("      " + ", ".join(parts[i:i + 6]))
    return layouts, ok_all


# ----------------------------------------------------------------------------- parent

class Worker:
    def __init__(self, framework, config_name, precision, log_dir, layout, environment):
        self.framework, self.config_name, self.precision = framework, config_name, precision
        self.log_path = os.path.join(log_dir, f"{framework}_{config_name}_{precision}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.train_step", f"--worker={framework},{config_name},{precision}"]
            + passthrough_flags() + [f"--d_batches={layout.split(',')[0]}", f"--g_batches={layout.split(',')[1]}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1,
            env=environment,
        )
        # per gate pattern: seconds and CPU seconds per step, and other processes' CPU share, of each round
        self.times, self.cpu_times, self.background = {}, {}, {}

    @property
    def label(self):
        return f"{self.framework}/{SHORT[self.precision]}"

    def receive(self):
        for line in self.proc.stdout:
            if line.startswith(PREFIX):
                return json.loads(line[len(PREFIX):])
        self.log.flush()
        with open(self.log_path) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"worker {self.label} {self.config_name} exited ({self.proc.wait()}):\n{tail}")

    def command(self, **message):
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        return self.receive()

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait()
        self.log.close()


def passthrough_flags():
    names = ("warmup_steps", "image_size_32", "image_size_64", "threads", "inter_op_threads", "seed",
             "verify_batch_size", "batch_size")
    return [f"--{name}={getattr(FLAGS, name)}" for name in names]


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def quiet_rounds(a, b, pattern):
    """Indices of the rounds in which both workers' measurements saw little load from other processes."""
    backgrounds = zip(a.background[pattern], b.background[pattern])
    return [r for r, (qa, qb) in enumerate(backgrounds) if max(qa, qb) < QUIET]


def compare(ours, base, pattern):
    """(RATIO value, its basis, median over all rounds, best/best, median over quiet rounds, their count)."""
    ours_times, base_times = ours.times[pattern], base.times[pattern]
    per_round = [tb / ta for ta, tb in zip(ours_times, base_times)]
    quiet = [per_round[r] for r in quiet_rounds(ours, base, pattern)]
    all_rounds = statistics.median(per_round)
    quiet_median = statistics.median(quiet) if quiet else float("nan")
    if len(quiet) >= MIN_QUIET:
        value, basis = quiet_median, f"quiet rounds ({len(quiet)} of {len(per_round)})"
    else:
        value, basis = all_rounds, f"all rounds (only {len(quiet)} of {len(per_round)} quiet)"
    return value, basis, all_rounds, min(base_times) / min(ours_times), quiet_median, len(quiet)


def ratio_name(config_name, pattern, ours, base):
    gated = "_gated" if pattern == "half" else ""
    return f"{config_name}{gated}_{SHORT[ours]}_vs_pytorch_{SHORT[base]}"


def pairs(workers):
    by_key = {(w.framework, w.precision): w for w in workers}
    return [
        (ours, base, by_key[("keras", ours)], by_key[("pytorch", base)])
        for ours, base in COMPARISONS
        if ("keras", ours) in by_key and ("pytorch", base) in by_key
    ]


def time_round(worker, pattern, steps):
    """Runs one timed round of `steps` steps under a gate pattern and records it."""
    time.sleep(0.5)  # lets the previous worker's threads go idle
    busy, start = busy_cpu_seconds(), time.perf_counter()
    reply = worker.command(op="run", steps=steps, pattern=pattern)
    wall = time.perf_counter() - start
    others = float("nan")
    if busy is not None:  # share of all CPUs that other processes used meanwhile
        others = max(0.0, busy_cpu_seconds() - busy - reply["cpu_seconds"]) / (wall * os.cpu_count())
    worker.background.setdefault(pattern, []).append(others)
    worker.times.setdefault(pattern, []).append(reply["seconds"] / reply["steps"])
    worker.cpu_times.setdefault(pattern, []).append(reply["cpu_seconds"] / reply["steps"])


def run_config(config_name, frameworks, steps, rounds, log_dir, layout, keras_environment):
    """Runs the variants of one config in interleaved rounds, each round under every gate pattern; adds up
    to --max_extra_rounds while some comparison has fewer than MIN_QUIET quiet rounds. Keras workers start
    with `keras_environment` (train.py's malloc), PyTorch's with this process's."""
    workers = [Worker(fw, config_name, p, log_dir, layout, keras_environment if fw == "keras" else None)
               for fw in frameworks for p in FLAGS.precisions]
    try:
        for worker in workers:  # built and warmed up in parallel, nothing timed yet
            worker.receive()
        r = 0
        while True:
            if r >= rounds:
                quiet_counts = [len(quiet_rounds(a, b, pattern)) for _, _, a, b in pairs(workers)
                                for pattern in FLAGS.gate_patterns]
                if r >= rounds + FLAGS.max_extra_rounds or not quiet_counts or min(quiet_counts) >= MIN_QUIET:
                    break
            order = workers[r % len(workers):] + workers[: r % len(workers)]
            if r % 2:
                order = order[::-1]
            for pattern in FLAGS.gate_patterns:
                for worker in order:
                    time_round(worker, pattern, steps * GATE_PATTERNS[pattern])
            r += 1
        for worker in workers:
            reply = worker.command(op="finish")
            worker.peak_rss_mb, worker.logs = reply["peak_rss_mb"], reply["logs"]
    finally:
        for worker in workers:
            worker.close()
    return workers, r


def main(argv):
    del argv
    if FLAGS.worker:
        framework, config_name, precision = FLAGS.worker.split(",")
        (keras_worker if framework == "keras" else torch_worker)(config_name, precision)
        return
    if FLAGS.verify_worker:
        verify_worker()
        return
    for flag, known in (("configs", CONFIGS), ("precisions", PRECISIONS), ("gate_patterns", GATE_PATTERNS)):
        unknown = [name for name in getattr(FLAGS, flag) if name not in known]
        if unknown:
            fail(f"--{flag}: unknown {unknown[0]!r}; choose from {', '.join(known)}")
    from keras_vaegan.config import ConfigError, TrainConfig  # TensorFlow-free

    try:  # training's own check of the count
        TrainConfig(inter_op_threads=FLAGS.inter_op_threads).validate()
    except ConfigError as error:
        fail(f"--{error}")
    try:
        keras_allocator, keras_environment = allocator_environment(os.environ)
    except ValueError as error:
        fail(str(error))
    if FLAGS.quick:
        if not any(f.startswith("--configs") for f in sys.argv):
            FLAGS.configs = ["gan_32", "vaegan_32"]
        FLAGS.rounds, FLAGS.warmup_steps, FLAGS.max_extra_rounds = 1, 1, 0
        FLAGS.steps = FLAGS.steps or 1
        FLAGS.batch_size = FLAGS.batch_size or 4
        FLAGS.verify = False
    with_torch = FLAGS.baseline and torch_available()
    frameworks = ["keras", "pytorch"] if with_torch else ["keras"]

    import platform

    print(f"bench.train_step  {time.strftime('%Y-%m-%d %H:%M:%S')}  python {platform.python_version()}  "
          f"cpus {os.cpu_count()}  configs {','.join(FLAGS.configs)}  rounds {FLAGS.rounds}")
    versions = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf, keras; print('tensorflow', tf.__version__, "
         "'keras', keras.__version__)"], capture_output=True, text=True).stdout.strip()
    if with_torch:
        import torch
        versions += f" torch {torch.__version__} (threads {FLAGS.threads})"
    print(versions)
    print(f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', '<unset>')}; "
          f"inter-op threads {FLAGS.inter_op_threads or 'default'}; malloc: keras {keras_allocator} (as train.py), "
          f"pytorch glibc; "
          f"batch {FLAGS.batch_size or '32 at 32^3, 4 at 64^3'}; "
          f"vaegan image size {FLAGS.image_size_32} at 32^3, {FLAGS.image_size_64} at 64^3; "
          f"D gate patterns {','.join(FLAGS.gate_patterns)} (open: D steps every step; half: on even steps)")
    if not with_torch:
        print("PyTorch baseline skipped: " + ("--nobaseline" if not FLAGS.baseline else "torch is not importable"))
    sys.stdout.flush()

    layouts = {}  # config: "d_batches,g_batches" of the baseline, found by the verification
    if with_torch and FLAGS.verify:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bench.train_step", "--verify_worker", f"--configs={','.join(FLAGS.configs)}",
             f"--precisions={','.join(FLAGS.verify_precisions)}"] + passthrough_flags(),
            capture_output=True, text=True,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith(PREFIX)]
        if proc.returncode or not lines:
            print(proc.stderr[-3000:])
            raise SystemExit("verification crashed")
        layouts, ok = print_verification(json.loads(lines[-1][len(PREFIX):])["verify"])
        print(f"  ({time.perf_counter() - start:.0f} s)")
        if not ok:
            raise SystemExit("the PyTorch reference does not match Keras in float32")
        sys.stdout.flush()

    rows, ratios = [], []
    with tempfile.TemporaryDirectory(prefix="bench_train_step_") as log_dir:
        for config_name in FLAGS.configs:
            steps = FLAGS.steps or DEFAULT_STEPS[config_name]
            start, load = time.perf_counter(), os.getloadavg()[0]
            layout = layouts.get(config_name, f"{FLAGS.d_batches},{FLAGS.g_batches}")
            workers, rounds_run = run_config(config_name, frameworks, steps, FLAGS.rounds, log_dir, layout,
                                             keras_environment)
            batch_size = batch_size_of(config_name)
            for pattern in FLAGS.gate_patterns:
                for worker in workers:
                    times = worker.times[pattern]
                    median = statistics.median(times)
                    rows.append((
                        config_name, pattern, worker.framework, worker.precision, batch_size / median,
                        1000 * median, 1000 * min(times), 1000 * max(times),
                        1000 * statistics.median(worker.cpu_times[pattern]),
                        100 * statistics.median(worker.background[pattern]),
                        worker.peak_rss_mb, " ".join(f"{k}={v:.3g}" for k, v in sorted(worker.logs.items())),
                    ))
                for ours, base, ours_worker, base_worker in pairs(workers):
                    ratios.append((ratio_name(config_name, pattern, ours, base), pattern)
                                  + compare(ours_worker, base_worker, pattern))
            print(f"[{config_name}: {steps} steps x {rounds_run} rounds, {time.perf_counter() - start:.0f} s, "
                  f"1-min load average {load:.1f} before, {os.getloadavg()[0]:.1f} after]")
            sys.stdout.flush()

    print()
    print(f"{'config':<10} {'gate':<5} {'framework':<9} {'precision':<15} {'samples/s':>9} {'step ms':>8} "
          f"{'min ms':>8} {'max ms':>8} {'cpu ms':>8} {'busy %':>6} {'peak RSS MB':>11}  metrics")
    for config_name, pattern, framework, precision, sps, ms, lo, hi, cpu, background, rss, logs in rows:
        print(f"{config_name:<10} {pattern:<5} {framework:<9} {precision:<15} {sps:9.2f} {ms:8.1f} {lo:8.1f} "
              f"{hi:8.1f} {cpu:8.0f} {background:6.0f} {rss:11.0f}  {logs}")
    print("step ms: median wall time per step over rounds (min, max: fastest and slowest round); samples/s = "
          "batch / median step;\ncpu ms: median CPU time of the variant's process per step (user + sys, all "
          "threads); busy %: median share of all\nCPUs that other processes used during its rounds; peak RSS: "
          "ru_maxrss of the variant's own process (both gate patterns); metrics: keras: mean\nover all its steps, "
          "pytorch: last step.")
    if with_torch:
        print()
        print(f"{'comparison (baseline time / our time)':<44} {'all rounds':>10} {'quiet':>11} {'best/best':>9}  "
              f"{'RATIO':>5}  goal            RATIO from")
        for name, pattern, value, basis, all_rounds, best, quiet, count in ratios:
            goal = next((v for k, v in GOALS[pattern].items() if name.endswith(k)), None)
            verdict = "-              " if goal is None else f">= {goal:<4} {'met    ' if value >= goal else 'NOT met'}"
            quiet_text = f"{quiet:.2f} ({count})" if count else "- (0)"
            print(f"{name:<44} {all_rounds:10.2f} {quiet_text:>11} {best:9.2f}  {value:5.2f}  {verdict}  {basis}")
        print("all rounds: median over rounds of the ratio of the two variants' times in the same round; quiet: the "
              "same over the\nrounds (how many) in which other processes used under "
              f"{100 * QUIET:.0f}% of the CPUs during both measurements; best/best: ratio of\nthe fastest rounds. "
              f"RATIO is the quiet median when there are at least {MIN_QUIET} quiet rounds, else the all-rounds "
              "median. Under\nload PyTorch's OpenMP threads slow down far more than TensorFlow's thread pool, so "
              "all-rounds ratios from a busy\nmachine overstate our speed.")
        print()
        for name, _, value, *_ in ratios:
            print(f"RATIO {name} {value:.3f}")
    else:
        print("PyTorch baseline skipped (no RATIO lines).")


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: parse_flags(FLAGS, argv))

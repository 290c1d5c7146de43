"""One Adam step over a model's weights: keras_vaegan's FusedAdam against Keras' Adam.

    PYTHONPATH=. python -m bench.optimizer_step                  # gan_64's G and D (28.6 million weights)
    PYTHONPATH=. python -m bench.optimizer_step --config=vaegan_32 --rounds=2

Builds the config's model as bench.train_step does (its variables are float32 under every precision),
gives each trainable variable a fixed random gradient and times `optimizer.apply` on all of them in a
tf.function. Each round runs Keras' Adam (the baseline) and FusedAdam in a new process each, so that a
peak RSS is its variant's own. Prints per variant the median ms per step and the peak RSS above the
built model's; how far the variants' weight moves differ after the same steps (the weights start
wherever each process initializes them); then `RATIO adam_step_<config> <Keras' time / ours>`
(above 1: ours is faster).
"""

import json
import statistics
import subprocess
import sys
import time

from absl import flags

from bench.train_step import CONFIGS, peak_rss_mb
from vaegan_utils.cli import console_entry, fail, parse_flags

FLAGS = flags.FlagValues()  # bench.train_step's own flags stay in absl's global ones
flags.DEFINE_string("config", "gan_64", f"One of {', '.join(CONFIGS)}.", flag_values=FLAGS)
flags.DEFINE_integer("steps", 20, "Timed steps per process, after 2 untimed ones.", flag_values=FLAGS)
flags.DEFINE_integer("rounds", 3, "Processes per variant, alternating.", flag_values=FLAGS)
flags.DEFINE_enum("worker", None, ["keras", "fused"], "Internal: run one variant in this process.",
                  flag_values=FLAGS)
VARIANTS = ("keras", "fused")


def worker(variant):
    import keras
    import numpy as np
    import tensorflow as tf

    from bench import train_step
    from keras_vaegan.adam import FusedAdam

    train_step.FLAGS(["bench.train_step"])  # its defaults: the config's batch and image sizes
    model = train_step.build_keras(FLAGS.config, "float32", seed=0)
    variables = model.generator.trainable_variables + model.discriminator.trainable_variables
    if hasattr(model, "encoder"):
        variables += model.encoder.trainable_variables
    rng = np.random.default_rng(0)
    gradients = [tf.constant(rng.normal(size=v.shape).astype("float32")) for v in variables]
    optimizer = (FusedAdam if variant == "fused" else keras.optimizers.Adam)(1e-3, beta_1=0.5)
    optimizer.build(variables)
    step = tf.function(lambda: optimizer.apply(gradients, variables))
    initial = np.concatenate([np.ravel(v.numpy()) for v in variables])
    built = peak_rss_mb()
    for _ in range(2):
        step()
    times = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    moved = np.concatenate([np.ravel(v.numpy()) for v in variables]) - initial
    print(json.dumps({"ms": 1000 * statistics.median(times), "step_rss_mb": peak_rss_mb() - built,
                      "weights": int(moved.size), "moved": moved[:: max(1, moved.size // 100_000)].tolist()}))


def run_variant(variant):
    process = subprocess.run([sys.executable, "-m", "bench.optimizer_step", f"--worker={variant}",
                              f"--config={FLAGS.config}", f"--steps={FLAGS.steps}"], capture_output=True, text=True)
    if process.returncode:
        raise SystemExit(f"{variant} worker failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def main(argv):
    parse_flags(FLAGS, argv, __doc__)
    if FLAGS.config not in CONFIGS:
        fail(f"--config: unknown {FLAGS.config!r}; choose from {', '.join(CONFIGS)}")
    if FLAGS.worker:
        worker(FLAGS.worker)
        return 0
    import numpy as np

    results = {variant: [] for variant in VARIANTS}
    for round_index in range(FLAGS.rounds):
        for variant in VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]:
            results[variant].append(run_variant(variant))
    print(f"bench.optimizer_step  {time.strftime('%Y-%m-%d %H:%M:%S')}  {FLAGS.config}: "
          f"{results['keras'][0]['weights']:,} weights, {FLAGS.steps} steps x {FLAGS.rounds} processes per variant")
    medians = {}
    for variant in VARIANTS:
        medians[variant] = statistics.median(r["ms"] for r in results[variant])
        step_rss = statistics.median(r["step_rss_mb"] for r in results[variant])
        label = "Keras' Adam" if variant == "keras" else "FusedAdam"
        per_process = ", ".join(f"{r['ms']:.1f}" for r in results[variant])
        print(f"  {label:<12} {medians[variant]:8.1f} ms/step  peak RSS above the built model {step_rss:6.0f} MB  "
              f"(ms per process: {per_process})")
    keras_moved, fused_moved = (np.array(results[variant][0]["moved"]) for variant in VARIANTS)
    print(f"  after {FLAGS.steps + 2} steps the weights moved up to {np.max(np.abs(keras_moved)):.2e}; the two "
          f"variants' moves differ by up to {np.max(np.abs(keras_moved - fused_moved)):.2e} (100,000 weights sampled)")
    print(f"RATIO adam_step_{FLAGS.config} {medians['keras'] / medians['fused']:.3f}")
    return 0


if __name__ == "__main__":
    console_entry(main)()

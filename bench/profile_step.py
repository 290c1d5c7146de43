"""Where a train step's time goes, ours against the PyTorch reference: oneDNN's primitives, one by one.

    PYTHONPATH=. python -m bench.profile_step --configs=gan_32 --precisions=float32 --steps=4

Both frameworks run their convolutions, BatchNorm and layout conversions ("reorder") through oneDNN. Each
(config, precision, framework) runs as a bench.train_step worker (the same model, data, warm-up and step as
the RATIO lines) with ONEDNN_VERBOSE=profile_exec, which makes oneDNN print every primitive it executes
with its time. After the warm-up, --steps open-gate steps are run and the lines they printed are summed by
primitive kind, propagation and implementation (e.g. convolution backward_weights jit:avx512_core). What oneDNN did not run
(TensorFlow's or PyTorch's own kernels: element-wise ops, losses, the optimizer, the framework itself) is
the step's wall time less that sum: "outside oneDNN". TensorFlow's worker runs one op at a time
(TF_NUM_INTEROP_THREADS=1), as PyTorch does: with its default two, primitives that run side by side each
take longer and their sum exceeds the step (gan_32 float32: 654 ms of primitives in a 513 ms step), so its
step here is somewhat slower than in bench.train_step.

Output: per configuration and precision, a table of milliseconds per step (and primitives per step) of each
kind for both frameworks, then `PROFILE <config>_<precision>_<framework>_<kind> <ms per step>` lines.
"""

import collections
import json
import os
import subprocess
import sys

from absl import flags

from bench.train_step import CONFIGS, PRECISIONS, PREFIX, torch_available
from vaegan_utils.cli import fail, parse_flags

FLAGS = flags.FlagValues()  # bench.train_step's flags are absl's global ones
flags.DEFINE_list("configs", ["gan_32"], f"Subset of {', '.join(CONFIGS)}.", flag_values=FLAGS)
flags.DEFINE_list("precisions", ["float32"], f"Subset of {', '.join(PRECISIONS)}.", flag_values=FLAGS)
flags.DEFINE_integer("steps", 4, "Open-gate train steps profiled after the warm-up.", flag_values=FLAGS)
flags.DEFINE_integer("warmup_steps", 3, "Untimed steps first (tracing, primitive creation).", flag_values=FLAGS)


def primitive_times(lines):
    """{(primitive kind, propagation, implementation): [milliseconds, count]} summed over oneDNN's `exec`
    lines."""
    totals = collections.defaultdict(lambda: [0.0, 0])
    for line in lines:
        fields = line.strip().split(",")
        if len(fields) < 8 or fields[0] != "onednn_verbose" or "exec" not in fields[1:4]:
            continue
        start = fields.index("exec") + 1  # after "exec": engine, primitive kind, implementation, propagation
        kind, implementation, propagation = fields[start + 1 : start + 4]
        try:
            milliseconds = float(fields[-1])
        except ValueError:
            continue
        entry = totals[(kind, propagation, implementation)]
        entry[0] += milliseconds
        entry[1] += 1
    return dict(totals)


def profile_worker(framework, config_name, precision, steps):
    """(oneDNN exec lines of `steps` steps, wall seconds per step) from a train_step worker."""
    # One TensorFlow op at a time, so that no primitive's time includes another's running beside it.
    environment = dict(os.environ, ONEDNN_VERBOSE="profile_exec", TF_CPP_MIN_LOG_LEVEL="2",
                       TF_NUM_INTEROP_THREADS="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.train_step", f"--worker={framework},{config_name},{precision}",
         f"--warmup_steps={FLAGS.warmup_steps}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, env=environment)

    def until_reply():
        collected = []
        for line in process.stdout:
            if line.startswith(PREFIX):
                return collected, json.loads(line[len(PREFIX):])
            collected.append(line)
        raise RuntimeError(f"{framework} worker for {config_name} exited ({process.wait()}): "
                           f"{process.stderr.read()[-2000:]}")

    try:
        until_reply()  # built and warmed up
        process.stdin.write(json.dumps({"op": "run", "steps": steps, "pattern": "open"}) + "\n")
        process.stdin.flush()
        lines, reply = until_reply()
        process.stdin.write(json.dumps({"op": "finish"}) + "\n")
        process.stdin.flush()
        until_reply()
    finally:
        process.stdin.close()
        process.wait()
    return lines, reply["seconds"] / reply["steps"]


def report(config_name, precision, results):
    """Prints the table and PROFILE lines of one configuration; `results`: {framework: (times, step seconds)}."""
    frameworks = list(results)
    kinds = sorted({kind for times, _ in results.values() for kind in times},
                   key=lambda kind: -max(results[f][0].get(kind, [0.0])[0] for f in frameworks))
    print(f"\n{config_name} {precision}: milliseconds per step (primitives per step)")
    print(f"{'oneDNN primitive':<60}" + "".join(f"{name:>22}" for name in frameworks))
    steps = FLAGS.steps
    for kind in kinds:
        cells = [results[f][0].get(kind, [0.0, 0]) for f in frameworks]
        print(f"{' '.join(kind):<60}" + "".join(f"{ms / steps:14.1f} ({count / steps:5.0f})" for ms, count in cells))
    lines = []
    for label, value in (("all oneDNN", lambda f: sum(ms for ms, _ in results[f][0].values()) / steps),
                         ("step (wall)", lambda f: 1000 * results[f][1])):
        print(f"{label:<60}" + "".join(f"{value(f):22.1f}" for f in frameworks))
    outside = {f: 1000 * results[f][1] - sum(ms for ms, _ in results[f][0].values()) / steps for f in frameworks}
    print(f"{'outside oneDNN (step less all oneDNN)':<60}" + "".join(f"{outside[f]:22.1f}" for f in frameworks))
    for framework in frameworks:
        for kind, (ms, _) in results[framework][0].items():
            name = "_".join(part.replace(":", "_") for part in kind)
            lines.append(f"PROFILE {config_name}_{precision}_{framework}_{name} {ms / steps:.2f}")
        lines.append(f"PROFILE {config_name}_{precision}_{framework}_step {1000 * results[framework][1]:.2f}")
        lines.append(f"PROFILE {config_name}_{precision}_{framework}_outside_onednn {outside[framework]:.2f}")
    print("\n".join(lines), flush=True)


def main(argv):
    parse_flags(FLAGS, argv, __doc__)
    for flag, known in (("configs", CONFIGS), ("precisions", PRECISIONS)):
        unknown = [name for name in getattr(FLAGS, flag) if name not in known]
        if unknown:
            fail(f"--{flag}: unknown {unknown[0]!r}; choose from {', '.join(known)}")
    for name in ("steps", "warmup_steps"):
        if getattr(FLAGS, name) < 1:
            fail(f"--{name}: {getattr(FLAGS, name)} must be at least 1")
    frameworks = ["keras", "pytorch"] if torch_available() else ["keras"]
    if len(frameworks) == 1:
        print("PyTorch reference skipped: torch is not importable")
    for config_name in FLAGS.configs:
        for precision in FLAGS.precisions:
            results = {}
            for framework in frameworks:
                lines, seconds = profile_worker(framework, config_name, precision, FLAGS.steps)
                results[framework] = (primitive_times(lines), seconds)
            report(config_name, precision, results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

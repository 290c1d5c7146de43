"""Averages the weights of a run's last checkpoints into one model (as SWA and checkpoint averaging do):

  python -m keras_vaegan.average --model runs/x/model.keras --checkpoints runs/x/checkpoints --out runs/x/averaged.keras

--checkpoints takes checkpoint prefixes (runs/x/checkpoints/ckpt-2000) or folders of them; --last N keeps
the N newest. --model gives the architecture (its own weights are not averaged in). The result is a
`.keras` file like the one training writes: it evaluates, exports and converts the same way.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from vaegan_utils.cli import ProgressCounter, console_entry, fail, parse_flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "A .keras file of the run (its model.keras): the architecture the checkpoints "
                    "are restored into.", flag_values=FLAGS)
flags.DEFINE_list("checkpoints", [], "Training checkpoints (RUN/checkpoints/ckpt-N) or folders of them (every "
                  "checkpoint in RUN/checkpoints), oldest first.", flag_values=FLAGS)
flags.DEFINE_integer("last", 0, "Average only the N newest of --checkpoints (0: all of them).", lower_bound=0,
                     flag_values=FLAGS)
flags.DEFINE_string("out", None, "The .keras file to write (replaced whole if it exists).", flag_values=FLAGS)


def _checkpoints():
    """--checkpoints expanded to prefixes, the --last newest of them."""
    from keras_vaegan.model_file import ModelFileError, training_checkpoints

    prefixes = []
    for path in FLAGS.checkpoints:
        try:
            found = training_checkpoints(path)
        except ModelFileError as error:
            fail(f"--checkpoints: {error}")
        if found is None:
            fail(f"--checkpoints: {path}: not a training checkpoint (no {path}.index) or a folder of them")
        prefixes.extend(prefix for prefix in found if prefix not in prefixes)
    return prefixes[-FLAGS.last :] if FLAGS.last else prefixes


def main(argv):
    parse_flags(FLAGS, argv, __doc__, required=("model", "out"))
    if not FLAGS.checkpoints:
        fail("--checkpoints is required")
    out = FLAGS.out
    if not out.endswith(".keras"):
        fail(f"--out: {out} must end in .keras")
    if os.path.isdir(out):
        fail(f"--out: {out} is a folder")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        fail(f"--out: {out}: its folder does not exist")
    if os.path.abspath(out) == os.path.abspath(FLAGS.model):
        fail(f"--out: {out} is --model; write the average beside it")
    prefixes = _checkpoints()
    from keras_vaegan.model_file import ModelFileError, load_trained_model
    from keras_vaegan.training import save_model_atomically
    from keras_vaegan.weights.averaging import average_checkpoints

    try:
        model = load_trained_model(FLAGS.model)
        average_checkpoints(model, prefixes, f"--model {FLAGS.model}", ProgressCounter("averaging", "checkpoints"))
        save_model_atomically(model, out)
    except ModelFileError as error:
        fail(str(error))
    except OSError as error:
        fail(f"{error.filename or out}: {error.strerror or error}")
    counted = f"{len(prefixes)} checkpoints" if len(prefixes) > 1 else "1 checkpoint"
    print(f"wrote {out}: the mean of the weights of {counted} ({', '.join(prefixes)})")
    return 0


run = console_entry(main)

if __name__ == "__main__":
    run()

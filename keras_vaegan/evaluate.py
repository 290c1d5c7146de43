"""Measures a trained model: python -m keras_vaegan.evaluate <task> --model M --data D --out DIR

Tasks:
  ikea        single-photo reconstruction on an IKEA benchmark folder: average precision per voxel at
              the ground truth's 20^3, per class and mean, IoU at 0.3/0.4/0.5, beside two reference
              predictors (the mean shape of the model library, the mean shape of the photo's class)
  generation  samples from the prior against held-out shapes (--data) and the training shapes
              (--train_data): coverage, minimum matching distance, 1-NN accuracy, empty/full samples,
              nearest training shapes
  classify    discriminator features into a linear SVM: trained on --data/<train_split>, scored on
              --data/<test_split>; accuracy, per-class accuracy, a confusion matrix
  classes     how much of a picture's class the encoder's code holds: a logistic regression on E's posterior
              mean, fitted on training pictures (--train_data, cross-validated there) and scored on held-out
              pictures (--data) and IKEA photos (--photos), beside the same probe on an untrained encoder and
              the most frequent training class
  renders     single-picture reconstruction on records of (picture, shape) pairs, such as
              `data_tools.ikea_renders --split heldout` or a model's own training set: average
              precision and IoU at the model's resolution, per class and mean, beside the mean shape
  summary     a run's numbers on its own kind of data: reconstruction IoU on training records
              (--train_data) and held-out records (--data) beside the class-mean shape, and prior samples:
              how many are empty, IoU of each with its nearest training shape
  latent      interpolation, shape arithmetic (from prior z, or from --images through the encoder) and
              what single units of the generator's first layer add to a shape
ikea and renders score the mean prediction of several models with --ensemble b.keras,c.keras, or of
several checkpoints of a run with --ensemble RUN/checkpoints (or RUN/checkpoints/ckpt-N,...).
Each task writes metrics.json, table.md and PNG figures into --out (other files there are kept).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from keras_vaegan.evaluation.settings import EvaluationConfig, EvaluationError  # noqa: E402
from vaegan_utils.cli import config_from_flags, console_entry, define_config_flags, fail, parse_flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("out", None, "Folder for metrics.json, table.md and the figures (created if missing).",
                    flag_values=FLAGS)
define_config_flags(FLAGS, EvaluationConfig)


def main(argv):
    task = parse_flags(FLAGS, argv, __doc__, required=("model", "out"), positional=1)
    task = task[0] if task else ""
    config = config_from_flags(FLAGS, EvaluationConfig)
    try:
        config.validate(task)
    except EvaluationError as error:
        fail(str(error))
    from vaegan_utils.folders import unwritable_reason

    problem = unwritable_reason(FLAGS.out)
    if problem:
        fail(f"{FLAGS.out}: cannot be written ({problem})")
    from keras_vaegan.evaluation.tasks import run_task

    try:
        result = run_task(task, config)
    except EvaluationError as error:
        fail(str(error))
    return _write(result)


def _write(result):
    from keras_vaegan.evaluation import outputs
    from vaegan_utils.files import staged_folder

    out = os.path.abspath(FLAGS.out)
    try:
        with staged_folder(out) as staging:
            names = outputs.write_results(staging, result.metrics, result.table, result.figures)
    except OSError as error:
        fail(f"{error.filename or out}: cannot be written ({error.strerror or error})")
    print(result.table)
    print(f"wrote {', '.join(names)} to {out}")
    return 0


run = console_entry(main)

if __name__ == "__main__":
    run()

"""Exports a trained model: python -m export --model runs/x/model.keras --out DIR [--formats ...] [--data_dir DIR]

Writes a SavedModel with serving signatures and TFLite files (fp32, fp16, int8),
checks each against the Keras model and writes export_report.json / .md.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from vaegan_utils.cli import ProgressCounter, console_entry, fail, parse_flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "A .keras model written by train.py (runs/<name>/model.keras).", flag_values=FLAGS)
flags.DEFINE_string("out", None, "Folder for the exported files and the report (replaced when complete).",
                    flag_values=FLAGS)
flags.DEFINE_string("formats", "saved_model,tflite_fp32,tflite_fp16,tflite_int8",
                    "Comma-separated: saved_model, tflite_fp32, tflite_fp16, tflite_int8.", flag_values=FLAGS)
flags.DEFINE_string("data_dir", None, "Training records: photos for int8 calibration and the parity batch.",
                    flag_values=FLAGS)
flags.DEFINE_integer("calibration_samples", 100, "Inputs for int8 calibration.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("parity_samples", 8, "Size of the fixed batch compared with Keras.", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the prior z of the parity batch and calibration.", lower_bound=0,
                     flag_values=FLAGS)


def main(argv):
    parse_flags(FLAGS, argv, __doc__, required=("model", "out"))
    from export.exporter import ExportError, export_model, parse_formats
    from keras_vaegan.data import DataError
    from keras_vaegan.model_file import ModelFileError

    try:
        formats = parse_formats(FLAGS.formats)
        result = export_model(
            FLAGS.model, FLAGS.out, formats, data_dir=FLAGS.data_dir,
            calibration_samples=FLAGS.calibration_samples, parity_samples=FLAGS.parity_samples, seed=FLAGS.seed,
            progress=ProgressCounter("export", "files"),
        )
    except (ExportError, ModelFileError, DataError) as error:
        fail(str(error))
    except OSError as error:
        fail(f"{error.filename or FLAGS.out}: {error.strerror or error}")
    print(f"wrote {len(result['files'])} checked outputs to {FLAGS.out} (report: {FLAGS.out}/export_report.md)")
    if not result["targets_met"]:
        print("warning: some parity targets are not met; see the report", file=sys.stderr)
    return 0


run = console_entry(main)

if __name__ == "__main__":
    run()

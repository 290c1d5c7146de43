"""Trains 3D-GAN or 3D-VAE-GAN: python train.py --flagfile=configs/<name>.flags [--flag=value ...]

Rerunning the same command resumes from the newest checkpoint in --model_dir. The command runs on
jemalloc where the system has it (KERAS_VAEGAN_MALLOC=system keeps glibc's malloc; see
vaegan_utils.allocator).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from keras_vaegan.config import ConfigError, ModelConfig, TrainConfig, validate_all  # noqa: E402
from vaegan_utils.allocator import run_on_jemalloc  # noqa: E402
from vaegan_utils.cli import config_from_flags, console_entry, define_config_flags, fail, parse_flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("data_dir", None, "Folder of TFRecord shards (data_tools output).", flag_values=FLAGS)
flags.DEFINE_string("model_dir", None, "Folder for checkpoints, logs, pictures and model.keras.", flag_values=FLAGS)
define_config_flags(FLAGS, ModelConfig)
define_config_flags(FLAGS, TrainConfig)


def configs_from_flags():
    """ModelConfig and TrainConfig from the parsed flags: each field is the flag of the same name."""
    return config_from_flags(FLAGS, ModelConfig), config_from_flags(FLAGS, TrainConfig)


def main(argv):
    parse_flags(FLAGS, argv, __doc__, required=("data_dir", "model_dir"))
    try:
        model_config, train_config = validate_all(*configs_from_flags())
    except ValueError as error:
        fail(f"--{error}")

    from keras_vaegan import callbacks, data, run_lock, training

    training.seed_process(train_config)
    expected = (ConfigError, data.DataError, training.CheckpointError, callbacks.NonFiniteLoss, run_lock.LockError)
    try:
        training.train(model_config, train_config, FLAGS.data_dir, FLAGS.model_dir)
    except training.Stopped as stopped:
        print(f"\n{stopped}", flush=True)
    except expected as error:
        fail(str(error))
    except OSError as error:
        fail(f"{error.filename or FLAGS.model_dir}: {error.strerror or error}")
    return 0


def run():
    """The command (python train.py, keras-vaegan-train): `main` on jemalloc."""
    try:
        run_on_jemalloc("train")
    except ValueError as error:
        fail(str(error))
    console_entry(main)()


if __name__ == "__main__":
    run()

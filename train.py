"""Trains 3D-GAN or 3D-VAE-GAN: python train.py --flagfile=configs/<name>.flags [--flag=value ...]

Rerunning the same command resumes from the newest checkpoint in --model_dir.
"""

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from keras_vaegan.config import ModelConfig, TrainConfig, check_compatible  # noqa: E402
from vaegan_utils.cli import fail, parse_flags  # noqa: E402

FLAGS = flags.FlagValues()

# Flags shared by every entry point (see docs/architecture.md, Conventions).
flags.DEFINE_string("data_dir", None, "Folder of TFRecord shards (data_tools output).", flag_values=FLAGS)
flags.DEFINE_string("model_dir", None, "Folder for checkpoints, logs, pictures and model.keras.", flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 32, "Global batch size (split over replicas).", flag_values=FLAGS)
flags.DEFINE_integer("train_steps", 1000, "Total training steps, including resumed ones.", flag_values=FLAGS)
flags.DEFINE_enum("resolution", "32", ["32", "64"], "Voxel grid edge.", flag_values=FLAGS)
flags.DEFINE_enum(
    "distribution_strategy", "one_device", ["one_device", "mirrored", "multi_worker_mirrored"],
    "tf.distribute strategy; multi_worker_mirrored reads TF_CONFIG.", flag_values=FLAGS,
)
flags.DEFINE_integer("seed", 0, "Seed of weights, noise and data order.", flag_values=FLAGS)
# Model.
flags.DEFINE_enum("model_type", "vaegan", ["gan", "vaegan"], "3D-GAN or 3D-VAE-GAN.", flag_values=FLAGS)
flags.DEFINE_integer("latent_dim", 200, "Size of z.", flag_values=FLAGS)
flags.DEFINE_integer("image_size", 64, "Encoder input edge (multiple of 32; the paper uses 256).", flag_values=FLAGS)
flags.DEFINE_boolean("synchronized_batch_norm", False, "BatchNorm statistics over the global batch.", flag_values=FLAGS)
flags.DEFINE_enum(
    "discriminator_norm", "batch", ["batch", "spectral", "none"],
    "D's normalization: batch (the paper), spectral (keras.layers.SpectralNormalization, no BatchNorm) or none.",
    flag_values=FLAGS,
)
# Optimization.
flags.DEFINE_float("generator_learning_rate", 0.0025, "Generator Adam learning rate.", flag_values=FLAGS)
flags.DEFINE_float("discriminator_learning_rate", 1e-5, "Discriminator Adam learning rate.", flag_values=FLAGS)
flags.DEFINE_float("encoder_learning_rate", 1e-4, "Encoder Adam learning rate.", flag_values=FLAGS)
flags.DEFINE_float("adam_beta1", 0.5, "Adam beta1 for all optimizers.", flag_values=FLAGS)
flags.DEFINE_float("d_accuracy_threshold", 0.8, "D is updated only while its accuracy is at most this.", flag_values=FLAGS)
flags.DEFINE_enum(
    "latent_prior", "normal", ["uniform", "normal"],
    "Prior of z: uniform [0, 1) is the authors' 3D-GAN sampler; 3D-VAE-GAN needs normal.", flag_values=FLAGS,
)
flags.DEFINE_float("latent_std", 1.0, "Deviation of the normal prior (the PyTorch port draws N(0, 0.33^2)).",
                   flag_values=FLAGS)
flags.DEFINE_enum(
    "gan_loss", "nonsaturating", ["nonsaturating", "hinge", "wgan_gp"],
    "Adversarial loss: nonsaturating (the paper's, with its accuracy gate), hinge or wgan_gp "
    "(hinge and wgan_gp need --d_accuracy_threshold=1).", flag_values=FLAGS,
)
flags.DEFINE_float(
    "gradient_penalty", 0.0,
    "Weight of D's gradient penalty: R1 on real shapes for nonsaturating/hinge, WGAN-GP's for wgan_gp (0: none).",
    flag_values=FLAGS,
)
flags.DEFINE_float("label_smoothing", 0.0, "One-sided label smoothing of real targets.", flag_values=FLAGS)
flags.DEFINE_float(
    "instance_noise", 0.0, "Deviation of Gaussian noise added to every shape D sees (0: none).", flag_values=FLAGS,
)
flags.DEFINE_integer(
    "instance_noise_steps", 0, "Steps over which the instance noise fades linearly to 0.", flag_values=FLAGS,
)
flags.DEFINE_float(
    "ema_momentum", 0.0,
    "Keep an exponential moving average of G's weights with this momentum (Keras optimizer use_ema) and save "
    "model.keras with it (0: off).", flag_values=FLAGS,
)
flags.DEFINE_float("kl_weight", 5.0, "a1: weight of the KL term.", flag_values=FLAGS)
flags.DEFINE_integer(
    "noise_warmup_steps", 0, "Steps over which the posterior noise rises from 0 (0: full noise from the start).", flag_values=FLAGS,
)
flags.DEFINE_float("reconstruction_weight", 1e-4, "a2: weight of the reconstruction term.", flag_values=FLAGS)
flags.DEFINE_float(
    "class_weight", 0.0,
    "3D-VAE-GAN: weight of an auxiliary cross-entropy of a linear class head on E's posterior mean against the "
    "records' class ids (0: no class head).", flag_values=FLAGS,
)
flags.DEFINE_boolean(
    "augment_images", False, "Reframe, recolour, blur and JPEG-compress training photos (keras_vaegan/augment.py).",
    flag_values=FLAGS,
)
flags.DEFINE_enum("schedule", "joint", ["joint", "separate"], "3D-VAE-GAN training schedule.", flag_values=FLAGS)
flags.DEFINE_integer("pretrain_steps", 0, "Separate schedule: G/D steps before the encoder's.", flag_values=FLAGS)
flags.DEFINE_string("init_from", "", "A .keras 3D-GAN whose G and D start this run.", flag_values=FLAGS)
flags.DEFINE_enum(
    "precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"], "Keras dtype policy.", flag_values=FLAGS,
)
flags.DEFINE_boolean("jit_compile", False, "XLA; slower on CPU for 3D convolutions.", flag_values=FLAGS)
# Bookkeeping.
flags.DEFINE_integer("checkpoint_every", 100, "Steps between checkpoints.", flag_values=FLAGS)
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.", flag_values=FLAGS)
flags.DEFINE_integer("sample_every", 100, "Steps between sample pictures.", flag_values=FLAGS)
flags.DEFINE_integer("log_every", 10, "Steps between TensorBoard scalars.", flag_values=FLAGS)
flags.DEFINE_integer(
    "mesh_summary_every", 100, "Steps between TensorBoard 3D meshes of the sample shapes (0: none).", flag_values=FLAGS,
)
# Faults.
flags.DEFINE_enum(
    "on_nonfinite", "stop", ["stop", "skip"],
    "A NaN/Inf loss: stop, or drop that step's update (back to the last checkpoint and replay) and go on.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "max_skipped_in_a_row", 5, "--on_nonfinite=skip: stop after this many non-finite steps in a row.", flag_values=FLAGS,
)
flags.DEFINE_enum(
    "bad_records", "fail", ["fail", "skip"],
    "A damaged or foreign TFRecord record: fail naming file and record, or leave it out and count it.",
    flag_values=FLAGS,
)


def configs_from_flags():
    """ModelConfig and TrainConfig from the parsed flags: each field is the flag of the same name."""

    def build(config_class):
        values = {field.name: FLAGS[field.name].value for field in dataclasses.fields(config_class)}
        if "resolution" in values:
            values["resolution"] = int(values["resolution"])
        return config_class(**values)

    return build(ModelConfig), build(TrainConfig)


def main(argv):
    parse_flags(FLAGS, argv, required=("data_dir", "model_dir"))
    model_config, train_config = configs_from_flags()
    try:
        model_config.validate()
        train_config.validate()
        check_compatible(model_config, train_config)
    except ValueError as error:
        fail(f"--{error}")

    import keras

    from keras_vaegan import callbacks, data, run_lock, training
    from keras_vaegan.config import ConfigError

    keras.utils.set_random_seed(FLAGS.seed)
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
    """Console entry point."""
    sys.exit(main(sys.argv))


if __name__ == "__main__":
    run()

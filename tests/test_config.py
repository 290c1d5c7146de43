"""ModelConfig / TrainConfig: defaults validate, every out-of-range value is a ConfigError naming its field."""

import dataclasses
import json

import pytest

from keras_vaegan.config import ConfigError, ModelConfig, TrainConfig, to_json


def test_defaults_validate_and_return_self():
    model_config = ModelConfig()
    train_config = TrainConfig()
    assert model_config.validate() is model_config
    assert train_config.validate() is train_config


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelConfig().resolution = 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().batch_size = 1


@pytest.mark.parametrize(
    "overrides",
    [
        dict(model_type="gan"),
        dict(resolution=64),
        dict(latent_dim=1),
        dict(latent_dim=4096),
        dict(image_size=32),
        dict(image_size=256),
        dict(image_size=512),
        dict(synchronized_batch_norm=True),
        dict(discriminator_norm="spectral"),
        dict(discriminator_norm="none"),
    ],
    ids=repr,
)
def test_model_config_accepts_values_in_range(overrides):
    ModelConfig(**overrides).validate()


@pytest.mark.parametrize(
    "field, value",
    [
        ("model_type", "wgan"),
        ("model_type", "GAN"),
        ("resolution", 16),
        ("resolution", 128),
        ("resolution", 48),
        ("latent_dim", 0),
        ("latent_dim", -200),
        ("latent_dim", 4097),
        ("image_size", 0),
        ("image_size", 16),
        ("image_size", 48),
        ("image_size", 100),
        ("image_size", 544),
        ("discriminator_norm", "layer"),
    ],
    ids=repr,
)
def test_model_config_rejects_out_of_range(field, value):
    with pytest.raises(ConfigError) as info:
        ModelConfig(**{field: value}).validate()
    assert str(info.value).startswith(f"{field}:"), str(info.value)
    assert str(value) in str(info.value)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    "resolution, generator, discriminator",
    [(64, (512, 256, 128, 64, 1), (64, 128, 256, 512, 1)), (32, (256, 128, 64, 32, 1), (32, 64, 128, 256, 1))],
)
def test_widths_are_the_papers(resolution, generator, discriminator):
    config = ModelConfig(resolution=resolution)
    assert config.generator_widths == generator
    assert config.discriminator_widths == discriminator


def test_architecture_names_image_size_only_for_vaegan():
    assert ModelConfig(model_type="vaegan", image_size=128).architecture()["image_size"] == 128
    assert ModelConfig(model_type="gan", image_size=128).architecture()["image_size"] is None
    # Training-only settings are not part of the architecture.
    assert set(ModelConfig().architecture()) == {"model_type", "resolution", "latent_dim", "image_size"}


def test_architecture_names_the_discriminator_norm_only_when_it_is_not_the_papers():
    # Run folders written before the setting existed keep matching a default run.
    assert "discriminator_norm" not in ModelConfig(discriminator_norm="batch").architecture()
    assert ModelConfig(discriminator_norm="spectral").architecture()["discriminator_norm"] == "spectral"


@pytest.mark.parametrize(
    "overrides",
    [
        dict(batch_size=1),
        dict(train_steps=1),
        dict(generator_learning_rate=1e-6, discriminator_learning_rate=0.999, encoder_learning_rate=0.5),
        dict(adam_beta1=0.0),
        dict(adam_beta1=0.999),
        dict(d_accuracy_threshold=1.0),
        dict(d_accuracy_threshold=1e-3),
        dict(latent_prior="normal"),
        dict(label_smoothing=0.0),
        dict(label_smoothing=0.49),
        dict(kl_weight=0.0),
        dict(noise_warmup_steps=500),
        dict(reconstruction_weight=0.0),
        dict(class_weight=0.5),
        dict(schedule="separate", pretrain_steps=1, train_steps=2),
        dict(schedule="separate", pretrain_steps=999, train_steps=1000),
        dict(precision="mixed_bfloat16"),
        dict(precision="mixed_float16"),
        dict(distribution_strategy="mirrored"),
        dict(distribution_strategy="multi_worker_mirrored"),
        dict(checkpoint_every=1, keep_checkpoints=1, sample_every=1, log_every=1),
        dict(seed=0),
        dict(seed=2**31),
        dict(latent_std=0.33),
        dict(gan_loss="hinge", d_accuracy_threshold=1.0),
        dict(gan_loss="hinge", d_accuracy_threshold=1.0, gradient_penalty=1.0),
        dict(gan_loss="wgan_gp", d_accuracy_threshold=1.0, gradient_penalty=10.0),
        dict(gradient_penalty=0.5),
        dict(instance_noise=0.2, instance_noise_steps=100),
        dict(ema_momentum=0.999),
        dict(ema_momentum=0.0),
        dict(deterministic=True),
        dict(deterministic=True, distribution_strategy="mirrored"),
        dict(inter_op_threads=0),
        dict(inter_op_threads=1),
        dict(inter_op_threads=4),
    ],
    ids=repr,
)
def test_train_config_accepts_values_in_range(overrides):
    TrainConfig(**overrides).validate()


NAN = float("nan")


@pytest.mark.parametrize(
    "field, value, others",
    [
        ("batch_size", 0, {}),
        ("batch_size", -4, {}),
        ("train_steps", 0, {}),
        ("generator_learning_rate", 0.0, {}),
        ("generator_learning_rate", 1.0, {}),
        ("generator_learning_rate", -0.1, {}),
        ("generator_learning_rate", NAN, {}),
        ("discriminator_learning_rate", 0.0, {}),
        ("discriminator_learning_rate", 2.0, {}),
        ("encoder_learning_rate", 0.0, {}),
        ("encoder_learning_rate", 1.5, {}),
        ("adam_beta1", -0.1, {}),
        ("adam_beta1", 1.0, {}),
        ("d_accuracy_threshold", 0.0, {}),
        ("d_accuracy_threshold", -0.5, {}),
        ("d_accuracy_threshold", 1.01, {}),
        ("d_accuracy_threshold", NAN, {}),
        ("latent_prior", "gaussian", {}),
        ("label_smoothing", -0.1, {}),
        ("label_smoothing", 0.5, {}),
        ("label_smoothing", NAN, {}),
        ("kl_weight", -1.0, {}),
        ("kl_weight", NAN, {}),
        ("noise_warmup_steps", -1, {}),
        ("reconstruction_weight", -1e-4, {}),
        ("class_weight", -0.1, {}),
        ("class_weight", NAN, {}),
        ("schedule", "alternating", {}),
        ("pretrain_steps", 10, dict(schedule="separate", train_steps=10)),
        ("pretrain_steps", 20, dict(schedule="separate", train_steps=10)),
        ("pretrain_steps", 0, dict(schedule="separate", train_steps=10)),
        ("pretrain_steps", -1, dict(schedule="separate", train_steps=10)),
        # A negative number of steps is meaningless whatever the schedule.
        ("pretrain_steps", -1, dict(schedule="joint")),
        ("precision", "float16", {}),
        ("precision", "bfloat16", {}),
        ("distribution_strategy", "tpu", {}),
        ("checkpoint_every", 0, {}),
        ("keep_checkpoints", 0, {}),
        ("sample_every", 0, {}),
        ("picture_size", 8, {}),
        ("picture_size", 2048, {}),
        ("log_every", 0, {}),
        ("log_every", -1, {}),
        ("seed", -1, {}),
        ("deterministic", True, dict(distribution_strategy="multi_worker_mirrored")),
        ("latent_std", 0.0, {}),
        ("latent_std", NAN, {}),
        ("latent_std", 0.5, dict(latent_prior="uniform")),
        ("gan_loss", "lsgan", {}),
        ("d_accuracy_threshold", 0.8, dict(gan_loss="hinge")),
        ("d_accuracy_threshold", 0.8, dict(gan_loss="wgan_gp", gradient_penalty=10.0)),
        ("label_smoothing", 0.1, dict(gan_loss="hinge", d_accuracy_threshold=1.0)),
        ("gradient_penalty", -1.0, {}),
        ("gradient_penalty", NAN, {}),
        ("gradient_penalty", 0.0, dict(gan_loss="wgan_gp", d_accuracy_threshold=1.0)),
        ("instance_noise", -0.1, {}),
        ("instance_noise", 1.5, {}),
        ("instance_noise_steps", -1, {}),
        ("ema_momentum", 1.0, {}),
        ("ema_momentum", -0.5, {}),
        ("ema_momentum", 1.5, {}),
        ("ema_momentum", NAN, {}),
        ("inter_op_threads", -1, {}),
    ],
    ids=repr,
)
def test_train_config_rejects_out_of_range(field, value, others):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{field: value}, **others).validate()
    assert str(info.value).startswith(f"{field}:"), str(info.value)


def test_separate_schedule_without_pretraining_needs_a_pretrained_model():
    with pytest.raises(ConfigError, match="^pretrain_steps:"):
        TrainConfig(schedule="separate", pretrain_steps=0).validate()
    TrainConfig(schedule="separate", pretrain_steps=0, init_from="/some/gan.keras").validate()


def test_choice_errors_list_the_choices():
    with pytest.raises(ConfigError) as info:
        ModelConfig(resolution=128).validate()
    assert "32" in str(info.value) and "64" in str(info.value)
    with pytest.raises(ConfigError) as info:
        TrainConfig(distribution_strategy="tpu").validate()
    for name in ("one_device", "mirrored", "multi_worker_mirrored"):
        assert name in str(info.value)


def test_to_json_keys_configs_by_class():
    text = to_json(ModelConfig(resolution=64), TrainConfig(batch_size=7))
    parsed = json.loads(text)
    assert parsed["ModelConfig"]["resolution"] == 64
    assert parsed["TrainConfig"]["batch_size"] == 7
    assert TrainConfig(**parsed["TrainConfig"]) == TrainConfig(batch_size=7)
    assert ModelConfig(**parsed["ModelConfig"]) == ModelConfig(resolution=64)

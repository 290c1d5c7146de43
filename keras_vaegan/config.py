"""Frozen settings for models, training and data, each with `validate()`.

The library takes these plain objects; flags live only in the binaries.
"""

import dataclasses
import json

RESOLUTIONS = (32, 64)
LATENT_PRIORS = ("uniform", "normal")
GAN_LOSSES = ("nonsaturating", "hinge", "wgan_gp")
DISCRIMINATOR_NORMS = ("batch", "spectral", "none")
MODEL_TYPES = ("gan", "vaegan")
SCHEDULES = ("joint", "separate")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored")
ON_NONFINITE = ("stop", "skip")
BAD_RECORDS = ("fail", "skip")


class ConfigError(ValueError):
    """A setting is out of range; the message names the setting."""


def _check(condition, name, message):
    if not condition:
        raise ConfigError(f"{name}: {message}")


def _check_choice(value, name, choices):
    _check(value in choices, name, f"{value!r} is not one of {', '.join(map(str, choices))}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture: what must match between a checkpoint and the model."""

    model_type: str = "vaegan"
    resolution: int = 32
    latent_dim: int = 200
    image_size: int = 64
    synchronized_batch_norm: bool = False
    discriminator_norm: str = "batch"

    @property
    def generator_widths(self):
        """Channels of G's transposed convolutions, the last being occupancy."""
        base = self.resolution * 8
        return (base, base // 2, base // 4, base // 8, 1)

    @property
    def discriminator_widths(self):
        """Channels of D's convolutions, the last being the logit."""
        return tuple(reversed(self.generator_widths[:-1])) + (1,)

    def validate(self):
        _check_choice(self.model_type, "model_type", MODEL_TYPES)
        _check_choice(self.resolution, "resolution", RESOLUTIONS)
        _check_choice(self.discriminator_norm, "discriminator_norm", DISCRIMINATOR_NORMS)
        _check(1 <= self.latent_dim <= 4096, "latent_dim", f"{self.latent_dim} is not in [1, 4096]")
        _check(
            self.image_size >= 32 and self.image_size % 32 == 0 and self.image_size <= 512,
            "image_size",
            f"{self.image_size} is not a multiple of 32 in [32, 512]",
        )
        return self

    def architecture(self):
        """The fields a checkpoint's weights depend on (D's normalization only when it is not the paper's)."""
        architecture = {
            "model_type": self.model_type,
            "resolution": self.resolution,
            "latent_dim": self.latent_dim,
            "image_size": self.image_size if self.model_type == "vaegan" else None,
        }
        if self.discriminator_norm != "batch":
            architecture["discriminator_norm"] = self.discriminator_norm
        return architecture


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimization and bookkeeping of one training run."""

    batch_size: int = 32
    train_steps: int = 1000
    generator_learning_rate: float = 0.0025
    discriminator_learning_rate: float = 1e-5
    encoder_learning_rate: float = 1e-4
    adam_beta1: float = 0.5
    d_accuracy_threshold: float = 0.8
    latent_prior: str = "normal"
    latent_std: float = 1.0
    gan_loss: str = "nonsaturating"
    gradient_penalty: float = 0.0
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    instance_noise_steps: int = 0
    ema_momentum: float = 0.0
    kl_weight: float = 5.0
    noise_warmup_steps: int = 0
    reconstruction_weight: float = 1e-4
    class_weight: float = 0.0
    augment_images: bool = False
    schedule: str = "joint"
    pretrain_steps: int = 0
    init_from: str = ""
    precision: str = "float32"
    distribution_strategy: str = "one_device"
    jit_compile: bool = False
    seed: int = 0
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    sample_every: int = 100
    log_every: int = 10
    mesh_summary_every: int = 100
    on_nonfinite: str = "stop"
    max_skipped_in_a_row: int = 5
    bad_records: str = "fail"

    def validate(self):
        _check(self.batch_size >= 1, "batch_size", f"{self.batch_size} must be at least 1")
        _check(self.train_steps >= 1, "train_steps", f"{self.train_steps} must be at least 1")
        for name in ("generator_learning_rate", "discriminator_learning_rate", "encoder_learning_rate"):
            value = getattr(self, name)
            _check(0 < value < 1, name, f"{value} is not in (0, 1)")
        _check(0 <= self.adam_beta1 < 1, "adam_beta1", f"{self.adam_beta1} is not in [0, 1)")
        _check(
            0 < self.d_accuracy_threshold <= 1,
            "d_accuracy_threshold",
            f"{self.d_accuracy_threshold} is not in (0, 1]",
        )
        _check_choice(self.latent_prior, "latent_prior", LATENT_PRIORS)
        _check(0 < self.latent_std <= 10, "latent_std", f"{self.latent_std} is not in (0, 10]")
        _check(
            self.latent_std == 1 or self.latent_prior == "normal",
            "latent_std",
            f"{self.latent_std} scales a normal prior; the uniform prior has no scale",
        )
        _check(0 <= self.label_smoothing < 0.5, "label_smoothing", f"{self.label_smoothing} is not in [0, 0.5)")
        self._validate_adversarial_terms()
        _check(
            self.ema_momentum == 0 or 0 < self.ema_momentum < 1,
            "ema_momentum",
            f"{self.ema_momentum} is not in (0, 1) (0: no moving average)",
        )
        _check(self.kl_weight >= 0, "kl_weight", f"{self.kl_weight} must not be negative")
        _check(self.noise_warmup_steps >= 0, "noise_warmup_steps", f"{self.noise_warmup_steps} must not be negative")
        _check(
            self.reconstruction_weight >= 0,
            "reconstruction_weight",
            f"{self.reconstruction_weight} must not be negative",
        )
        _check(self.class_weight >= 0, "class_weight", f"{self.class_weight} must not be negative")
        _check_choice(self.schedule, "schedule", SCHEDULES)
        _check(self.pretrain_steps >= 0, "pretrain_steps", f"{self.pretrain_steps} must not be negative")
        _check(
            self.pretrain_steps < self.train_steps or self.schedule == "joint",
            "pretrain_steps",
            f"{self.pretrain_steps} must be below train_steps ({self.train_steps}) for the separate schedule",
        )
        _check(
            self.schedule == "joint" or self.pretrain_steps >= 1 or self.init_from,
            "pretrain_steps",
            "the separate schedule needs generator/discriminator steps or a pretrained --init_from model",
        )
        _check_choice(self.precision, "precision", PRECISIONS)
        _check_choice(self.distribution_strategy, "distribution_strategy", STRATEGIES)
        for name in ("checkpoint_every", "keep_checkpoints", "sample_every", "log_every"):
            value = getattr(self, name)
            _check(value >= 1, name, f"{value} must be at least 1")
        _check(
            self.mesh_summary_every >= 0, "mesh_summary_every", f"{self.mesh_summary_every} must not be negative (0: off)"
        )
        _check(self.seed >= 0, "seed", f"{self.seed} must not be negative")
        _check_choice(self.on_nonfinite, "on_nonfinite", ON_NONFINITE)
        _check(
            self.max_skipped_in_a_row >= 1, "max_skipped_in_a_row", f"{self.max_skipped_in_a_row} must be at least 1"
        )
        _check_choice(self.bad_records, "bad_records", BAD_RECORDS)
        return self

    def _validate_adversarial_terms(self):
        """The loss and the stabilizers that go with it."""
        _check_choice(self.gan_loss, "gan_loss", GAN_LOSSES)
        paper_loss = self.gan_loss == "nonsaturating"
        _check(
            paper_loss or self.d_accuracy_threshold == 1,
            "d_accuracy_threshold",
            f"{self.d_accuracy_threshold}: the accuracy gate belongs to the nonsaturating loss, not {self.gan_loss}; "
            "set it to 1 (off)",
        )
        _check(
            paper_loss or self.label_smoothing == 0,
            "label_smoothing",
            f"{self.label_smoothing}: label smoothing softens the nonsaturating loss's targets; {self.gan_loss} has none",
        )
        _check(self.gradient_penalty >= 0, "gradient_penalty", f"{self.gradient_penalty} must not be negative")
        _check(
            self.gan_loss != "wgan_gp" or self.gradient_penalty > 0,
            "gradient_penalty",
            "wgan_gp needs a positive penalty weight (10 in Gulrajani et al.)",
        )
        _check(0 <= self.instance_noise <= 1, "instance_noise", f"{self.instance_noise} is not in [0, 1]")
        _check(
            self.instance_noise_steps >= 0, "instance_noise_steps", f"{self.instance_noise_steps} must not be negative"
        )
        _check(
            self.instance_noise == 0 or self.instance_noise_steps >= 1,
            "instance_noise_steps",
            "instance noise fades out over these steps: give at least 1",
        )


def check_compatible(model_config, train_config):
    """Raises ConfigError for settings that contradict each other across the two configs."""
    if model_config.model_type == "vaegan":
        if train_config.latent_prior != "normal":
            raise ConfigError("latent_prior: 3D-VAE-GAN's KL term pulls q(z|y) to N(0, I), so its prior must be normal")
        if train_config.latent_std != 1:
            raise ConfigError(f"latent_std: {train_config.latent_std}: 3D-VAE-GAN's KL term pulls q(z|y) to N(0, I), "
                              "so its prior's deviation must be 1")
    if train_config.gan_loss == "wgan_gp" and model_config.discriminator_norm == "batch":
        raise ConfigError("discriminator_norm: batch: WGAN-GP penalizes each shape's gradient, which BatchNorm "
                          "couples across the batch; use spectral or none")


def to_json(*configs):
    """Serializes configs into one JSON object keyed by class name."""
    return json.dumps({type(c).__name__: dataclasses.asdict(c) for c in configs}, indent=2, sort_keys=True)

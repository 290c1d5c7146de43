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


def setting(default, help, choices=None):
    """A config field with the help text (and allowed values) of its command-line flag, so that its default,
    meaning and choices live in one place; every command defines its flags from these."""
    metadata = {"help": help} if choices is None else {"help": help, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


def _check(condition, name, message):
    if not condition:
        raise ConfigError(f"{name}: {message}")


def _check_choice(value, name, choices):
    _check(value in choices, name, f"{value!r} is not one of {', '.join(map(str, choices))}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture: what must match between a checkpoint and the model."""

    model_type: str = setting("vaegan", "3D-GAN or 3D-VAE-GAN.", MODEL_TYPES)
    resolution: int = setting(32, "Voxel grid edge.", RESOLUTIONS)
    latent_dim: int = setting(200, "Size of z.")
    image_size: int = setting(64, "Encoder input edge (multiple of 32; the paper uses 256).")
    synchronized_batch_norm: bool = setting(False, "BatchNorm statistics over the global batch.")
    discriminator_norm: str = setting(
        "batch",
        "D's normalization: batch (the paper), spectral (keras.layers.SpectralNormalization, no BatchNorm) or none.",
        DISCRIMINATOR_NORMS,
    )

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

    batch_size: int = setting(32, "Global batch size (split over replicas).")
    train_steps: int = setting(1000, "Total training steps, including resumed ones.")
    generator_learning_rate: float = setting(0.0025, "Generator Adam learning rate.")
    discriminator_learning_rate: float = setting(1e-5, "Discriminator Adam learning rate.")
    encoder_learning_rate: float = setting(1e-4, "Encoder Adam learning rate.")
    adam_beta1: float = setting(0.5, "Adam beta1 for all optimizers.")
    d_accuracy_threshold: float = setting(0.8, "D is updated only while its accuracy is at most this.")
    latent_prior: str = setting(
        "normal", "Prior of z: uniform [0, 1) is the authors' 3D-GAN sampler; 3D-VAE-GAN needs normal.", LATENT_PRIORS
    )
    latent_std: float = setting(1.0, "Deviation of the normal prior (the PyTorch port draws N(0, 0.33^2)).")
    gan_loss: str = setting(
        "nonsaturating",
        "Adversarial loss: nonsaturating (the paper's, with its accuracy gate), hinge or wgan_gp "
        "(hinge and wgan_gp need --d_accuracy_threshold=1).",
        GAN_LOSSES,
    )
    gradient_penalty: float = setting(
        0.0,
        "Weight of D's gradient penalty: R1 on real shapes for nonsaturating/hinge, WGAN-GP's for wgan_gp (0: none).",
    )
    label_smoothing: float = setting(0.0, "One-sided label smoothing of real targets.")
    instance_noise: float = setting(0.0, "Deviation of Gaussian noise added to every shape D sees (0: none).")
    instance_noise_steps: int = setting(
        0, "Steps over which the instance noise fades linearly to 0 (0: it never fades)."
    )
    ema_momentum: float = setting(
        0.0,
        "Keep exponential moving averages of G's and E's weights with this momentum (Keras optimizer use_ema) "
        "and save model.keras with them (0: off).",
    )
    kl_weight: float = setting(5.0, "a1: weight of the KL term.")
    noise_warmup_steps: int = setting(
        0, "Steps over which the posterior noise rises from 0 (0: full noise from the start)."
    )
    reconstruction_weight: float = setting(1e-4, "a2: weight of the reconstruction term.")
    class_weight: float = setting(
        0.0,
        "3D-VAE-GAN: weight of an auxiliary cross-entropy of a linear class head on E's posterior mean against "
        "the records' class ids (0: no class head).",
    )
    augment_images: bool = setting(
        False, "Reframe, recolour, blur and JPEG-compress training photos (keras_vaegan/augment.py)."
    )
    schedule: str = setting("joint", "3D-VAE-GAN training schedule.", SCHEDULES)
    pretrain_steps: int = setting(0, "Separate schedule: G/D steps before the encoder's.")
    init_from: str = setting("", "A .keras 3D-GAN whose G and D start this run.")
    precision: str = setting("float32", "Keras dtype policy.", PRECISIONS)
    distribution_strategy: str = setting(
        "one_device", "tf.distribute strategy; multi_worker_mirrored reads TF_CONFIG.", STRATEGIES
    )
    jit_compile: bool = setting(False, "XLA; slower on CPU for 3D convolutions.")
    inter_op_threads: int = setting(
        0,
        "Threads on which TensorFlow runs a step's independent ops side by side (0: TensorFlow's default, one per "
        "core). TensorFlow caches oneDNN's primitives per thread, so 1 lowers peak memory at a cost in speed.",
    )
    seed: int = setting(0, "Seed of weights, noise and data order.")
    deterministic: bool = setting(
        False,
        "Bit-identical weights from every run of the same command on the same machine, killed and resumed or "
        "not: TensorFlow's op determinism, under which an op without a deterministic kernel stops the run "
        "(docs/reliability.md, Deterministic mode).",
    )
    checkpoint_every: int = setting(100, "Steps between checkpoints.")
    keep_checkpoints: int = setting(3, "Checkpoints kept.")
    sample_every: int = setting(100, "Steps between sample pictures.")
    picture_size: int = setting(128, "Pixels per shape in samples.png and reconstructions.png (16 to 1024).")
    log_every: int = setting(10, "Steps between TensorBoard scalars.")
    mesh_summary_every: int = setting(100, "Steps between TensorBoard 3D meshes of the sample shapes (0: none).")
    on_nonfinite: str = setting(
        "stop",
        "A NaN/Inf loss: stop, or drop that step's update (back to the last checkpoint and replay) and go on.",
        ON_NONFINITE,
    )
    max_skipped_in_a_row: int = setting(5, "--on_nonfinite=skip: stop after this many non-finite steps in a row.")
    bad_records: str = setting(
        "fail",
        "A damaged or foreign TFRecord record: fail naming file and record, or leave it out and count it.",
        BAD_RECORDS,
    )

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
        _check(
            self.inter_op_threads >= 0,
            "inter_op_threads",
            f"{self.inter_op_threads} must be 0 (TensorFlow's default) or a thread count",
        )
        for name in ("checkpoint_every", "keep_checkpoints", "sample_every", "log_every"):
            value = getattr(self, name)
            _check(value >= 1, name, f"{value} must be at least 1")
        _check(16 <= self.picture_size <= 1024, "picture_size", f"{self.picture_size} is not in [16, 1024]")
        _check(
            self.mesh_summary_every >= 0, "mesh_summary_every", f"{self.mesh_summary_every} must not be negative (0: off)"
        )
        _check(self.seed >= 0, "seed", f"{self.seed} must not be negative")
        _check(
            not self.deterministic or self.distribution_strategy != "multi_worker_mirrored",
            "deterministic",
            "multi_worker_mirrored is not covered: bit-identical runs and resumes are only verified for one process "
            "on one machine",
        )
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


def validate_all(model_config, train_config):
    """Validates each config and their combination; returns them. Raises ConfigError naming the setting."""
    model_config.validate()
    train_config.validate()
    check_compatible(model_config, train_config)
    return model_config, train_config


def to_json(*configs):
    """Serializes configs into one JSON object keyed by class name."""
    return json.dumps({type(c).__name__: dataclasses.asdict(c) for c in configs}, indent=2, sort_keys=True)

"""Builds and compiles a 3D-GAN or 3D-VAE-GAN from configs."""

import keras

from keras_vaegan.adam import FusedAdam
from keras_vaegan.config import check_compatible

from keras_vaegan.gan import GAN3D
from keras_vaegan.vaegan import VAEGAN3D


def set_precision(precision):
    """Sets the global Keras dtype policy: float32 | mixed_bfloat16 | mixed_float16.

    The models keep their last activation (occupancy, logits, latent moments)
    and the losses in float32 under either mixed policy.
    """
    keras.mixed_precision.set_dtype_policy(precision)


def make_optimizer(learning_rate, beta1, precision, ema_momentum=0.0):
    """Adam as in the paper (fused, keras_vaegan.adam), keeping a moving average of the weights when
    `ema_momentum` > 0; wrapped for dynamic loss scaling under mixed_float16."""
    ema = dict(use_ema=True, ema_momentum=ema_momentum) if ema_momentum else {}
    optimizer = FusedAdam(learning_rate, beta_1=beta1, **ema)
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def build_model(model_config, train_config, num_classes=0):
    """A compiled GAN3D or VAEGAN3D; call inside the strategy scope, after `set_precision`.

    A VAEGAN3D gets a class head over `num_classes` classes when `train_config.class_weight` > 0.
    With `train_config.ema_momentum` > 0 the optimizers of G (and E) keep moving averages of their
    weights (see keras_vaegan.ema).
    """
    check_compatible(model_config, train_config)
    common = dict(
        resolution=model_config.resolution,
        latent_dim=model_config.latent_dim,
        latent_prior=train_config.latent_prior,
        d_accuracy_threshold=train_config.d_accuracy_threshold,
        label_smoothing=train_config.label_smoothing,
        seed=train_config.seed,
        synchronized_batch_norm=model_config.synchronized_batch_norm,
        latent_std=train_config.latent_std,
        gan_loss=train_config.gan_loss,
        gradient_penalty=train_config.gradient_penalty,
        instance_noise=train_config.instance_noise,
        instance_noise_steps=train_config.instance_noise_steps,
        discriminator_norm=model_config.discriminator_norm,
    )
    beta1, precision = train_config.adam_beta1, train_config.precision
    optimizers = dict(
        g_optimizer=make_optimizer(train_config.generator_learning_rate, beta1, precision, train_config.ema_momentum),
        d_optimizer=make_optimizer(train_config.discriminator_learning_rate, beta1, precision),
    )
    if model_config.model_type == "gan":
        model = GAN3D(**common, name="gan3d")
    else:
        model = VAEGAN3D(
            image_size=model_config.image_size,
            kl_weight=train_config.kl_weight,
            noise_warmup_steps=train_config.noise_warmup_steps,
            reconstruction_weight=train_config.reconstruction_weight,
            num_classes=num_classes if train_config.class_weight else 0,
            class_weight=train_config.class_weight,
            **common,
            name="vaegan3d",
        )
        optimizers["e_optimizer"] = make_optimizer(
            train_config.encoder_learning_rate, beta1, precision, train_config.ema_momentum
        )
    model.compile(jit_compile=train_config.jit_compile, **optimizers)
    return model

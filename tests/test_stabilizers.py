"""What trains 3D-GAN beyond the paper's settings: hinge and WGAN-GP losses, R1, instance noise,
a spectrally normalized D, the prior's scale and the moving average of G's weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import build_gan, build_vaegan, changed_paths, random_images, random_voxels, snapshot, train_steps
from export import inputs, saved_model
from keras_vaegan import ema
from keras_vaegan.config import ConfigError, ModelConfig, TrainConfig, check_compatible
from keras_vaegan.discriminator import Discriminator
from keras_vaegan.gan import REAL_NOISE_STREAM
from keras_vaegan.models import build_model


def constant_critic(model, logit):
    """D answers `logit` whatever it sees (zero last kernel, bias = logit): its input gradient is 0.

    Build the model with a negligible D rate: D's update would otherwise move it before G's loss."""
    last = model.discriminator.blocks[-1].conv
    last.kernel.assign(np.zeros(last.kernel.shape, "float32"))
    last.bias.assign(np.full(last.bias.shape, logit, "float32"))


def test_hinge_losses_of_a_constant_critic():
    model = build_gan(d_learning_rate=1e-9, gan_loss="hinge", d_accuracy_threshold=1.0, discriminator_norm="none")
    constant_critic(model, 0.5)
    history = train_steps(model, random_voxels())
    assert history["d_loss"] == [pytest.approx(0.5 + 1.5)]  # max(0, 1 - 0.5) + max(0, 1 + 0.5)
    assert history["g_loss"] == [pytest.approx(-0.5)]


def test_wgan_gp_penalizes_a_flat_critic_by_its_weight():
    model = build_gan(d_learning_rate=1e-9, gan_loss="wgan_gp", gradient_penalty=10.0, d_accuracy_threshold=1.0, discriminator_norm="none")
    constant_critic(model, 2.0)
    history = train_steps(model, random_voxels())
    # D(G(z)) - D(x) = 0, and the gradient norm 0 costs 10 * (0 - 1)^2.
    assert history["d_loss"] == [pytest.approx(10.0, rel=1e-4)]
    assert history["g_loss"] == [pytest.approx(-2.0)]


def test_r1_adds_half_the_squared_input_gradient_of_real_shapes():
    voxels = random_voxels()
    plain = build_gan(d_accuracy_threshold=1.0, seed=3)
    weights = plain.get_weights()
    penalized = build_gan(d_accuracy_threshold=1.0, seed=3, gradient_penalty=2.0)
    penalized.set_weights(weights)
    # D's input gradient at the real batch, before the step, computed here independently.
    real = tf.constant(voxels)
    with tf.GradientTape() as tape:
        tape.watch(real)
        total = tf.reduce_sum(plain.discriminator(real, training=True))
    gradients = tape.gradient(total, real).numpy().reshape(len(voxels), -1)
    penalty = 0.5 * (gradients**2).sum(axis=1).mean()
    assert penalty > 1e-6  # the comparison has teeth
    plain.set_weights(weights)
    d_plain = train_steps(plain, voxels)["d_loss"][0]
    d_penalized = train_steps(penalized, voxels)["d_loss"][0]
    assert d_penalized - d_plain == pytest.approx(2.0 * penalty, rel=1e-3)


def test_instance_noise_fades_out_linearly_or_stays():
    model = build_gan(instance_noise=0.4, instance_noise_steps=10)
    voxels = tf.constant(random_voxels(batch=8))
    deviations = []
    for step in (0, 5, 10, 30):
        model.step.assign(step)
        noise = model.with_instance_noise(voxels, REAL_NOISE_STREAM) - voxels
        deviations.append(float(tf.math.reduce_std(noise)))
    assert deviations[0] == pytest.approx(0.4, rel=0.02)
    assert deviations[1] == pytest.approx(0.2, rel=0.02)
    assert deviations[2:] == [0.0, 0.0]
    constant = build_gan(instance_noise=0.3, instance_noise_steps=0)
    constant.step.assign(10_000)
    noise = constant.with_instance_noise(voxels, REAL_NOISE_STREAM) - voxels
    assert float(tf.math.reduce_std(noise)) == pytest.approx(0.3, rel=0.02)  # 0 steps: it never fades
    plain = build_gan()
    assert plain.with_instance_noise(voxels, REAL_NOISE_STREAM) is voxels


def test_stabilizers_train_3d_vaegan_too():
    model = build_vaegan(gan_loss="hinge", d_accuracy_threshold=1.0, gradient_penalty=1.0, instance_noise=0.1,
                         instance_noise_steps=5, discriminator_norm="spectral")
    history = train_steps(model, (random_images(), random_voxels()), steps=2)
    assert all(np.isfinite(values).all() for values in history.values())
    assert history["d_updated"] == [1.0]  # the mean over both steps: D stepped in each


def test_spectral_norm_keeps_each_kernel_at_spectral_norm_one_and_round_trips(tmp_path):
    # Seeded: how fast the power iteration converges depends on the initial kernels and vectors, which were
    # drawn from whatever state the tests run before left (one CI run saw 1.058 after 15 iterations).
    keras.utils.set_random_seed(0)
    discriminator = Discriminator(32, norm="spectral")
    voxels = random_voxels()
    for _ in range(15):  # one power iteration per call
        discriminator(voxels, training=True)
    for block in discriminator.blocks:
        kernel = block.conv.layer.kernel.numpy()
        sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert sigma == pytest.approx(1.0, rel=0.05), block.name
        assert block.norm is None
    path = str(tmp_path / "d.keras")
    discriminator.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(voxels).numpy(), discriminator(voxels).numpy(), rtol=1e-5, atol=1e-6)


def test_prior_deviation_scales_normal_samples_in_training_and_export():
    model = build_gan(latent_prior="normal", latent_std=0.33)
    z = model.sample_latent(4000, tf.constant([0, 7], tf.int64)).numpy()
    assert z.std() == pytest.approx(0.33, rel=0.02)
    exported = saved_model.prior_latent(model, tf.constant(4000), tf.constant(3, tf.int64)).numpy()
    assert exported.std() == pytest.approx(0.33, rel=0.02)
    assert inputs.prior_latents(model, 4000, seed=3).std() == pytest.approx(0.33, rel=0.02)


@pytest.mark.parametrize(
    "model_overrides, train_overrides, flag",
    [
        (dict(model_type="vaegan"), dict(latent_std=0.5), "latent_std"),
        (dict(model_type="gan"), dict(gan_loss="wgan_gp", gradient_penalty=10.0, d_accuracy_threshold=1.0),
         "discriminator_norm"),
    ],
)
def test_contradictory_settings_across_configs(model_overrides, train_overrides, flag):
    model_config, train_config = ModelConfig(**model_overrides), TrainConfig(**train_overrides).validate()
    with pytest.raises(ConfigError, match=f"^{flag}:"):
        check_compatible(model_config, train_config)
    with pytest.raises(ConfigError, match=f"^{flag}:"):
        build_model(model_config, train_config)


def _ema_model(momentum=0.5):
    return build_model(ModelConfig(model_type="gan"), TrainConfig(ema_momentum=momentum, batch_size=4,
                                                                   d_accuracy_threshold=1.0))


@pytest.fixture(scope="module")
def ema_run():
    """A GAN whose G optimizer averages with momentum 0.5, and G's trainable weights after each of 3 steps."""
    model = _ema_model(momentum=0.5)
    seen = []
    for _ in range(3):
        train_steps(model, random_voxels())
        seen.append(snapshot(model.generator.trainable_variables))
    return model, seen


def test_moving_average_of_generator_weights_follows_kerass_rule(ema_run):
    model, seen = ema_run
    raw = snapshot(model.generator.weights)
    averaged = ema.averaged_weights(model)
    # The first step copies the weights; then average <- 0.5 average + 0.5 weights.
    trainable = {id(v): i for i, v in enumerate(model.generator.trainable_variables)}
    for i, variable in enumerate(model.generator.weights):
        if id(variable) in trainable:
            k = trainable[id(variable)]
            want = 0.25 * seen[0][k] + 0.25 * seen[1][k] + 0.5 * seen[2][k]
            np.testing.assert_allclose(averaged[i], want, rtol=1e-5, atol=1e-7)
        else:
            np.testing.assert_array_equal(averaged[i], raw[i])  # BatchNorm statistics are not averaged
    # G itself keeps its raw weights.
    for now, before in zip(snapshot(model.generator.weights), raw):
        np.testing.assert_array_equal(now, before)


def test_averaged_generator_measures_its_own_batchnorm_statistics(ema_run):
    model, _ = ema_run
    generator = ema.averaged_generator(model)
    z = model.sample_latent(ema.STANDING_BATCH, tf.constant([model.seed, ema.STANDING_SEED], tf.int64))
    stale = [v.numpy() for v in model.generator.weights if "moving_mean" in v.path]
    fresh = [v.numpy() for v in generator.weights if "moving_mean" in v.path]
    assert len(stale) == len(fresh) == 4
    assert not np.allclose(stale[0], fresh[0])
    # Inference on the batch the statistics were measured on equals a training-mode pass over it.
    np.testing.assert_allclose(generator(z, training=False).numpy(), generator(z, training=True).numpy(), atol=1e-4)


def test_use_averaged_networks_and_checkpoints(ema_run, tmp_path):
    model, _ = ema_run
    checkpoint = tf.train.Checkpoint(model=model, g_optimizer=model.g_optimizer, d_optimizer=model.d_optimizer)
    path = checkpoint.save(str(tmp_path / "ckpt"))
    resumed = _ema_model()
    tf.train.Checkpoint(model=resumed, g_optimizer=resumed.g_optimizer, d_optimizer=resumed.d_optimizer).restore(
        path
    ).assert_existing_objects_matched()
    for a, b in zip(ema.averaged_weights(resumed), ema.averaged_weights(model)):
        np.testing.assert_array_equal(a, b)  # the averages travel in the checkpoint
    assert resumed.g_optimizer.use_ema and not build_gan().g_optimizer.use_ema
    want = ema.averaged_generator(resumed).get_weights()
    ema.use_averaged_networks(resumed)
    for target, source in zip(resumed.generator.get_weights(), want):
        np.testing.assert_allclose(target, source, rtol=1e-5, atol=1e-6)


def test_a_vaegan_averages_its_encoder_with_its_generator():
    """E and G are averaged together, so that the averaged G decodes the codes of a matching E."""
    model = build_model(ModelConfig(model_type="vaegan", image_size=32),
                        TrainConfig(ema_momentum=0.5, batch_size=4, d_accuracy_threshold=1.0))
    seen = []
    for _ in range(3):
        train_steps(model, (random_images(), random_voxels()))
        seen.append(snapshot(model.encoder.trainable_variables))
    statistics = [v.path for v in model.encoder.weights if "moving" in v.path]
    before = snapshot(model.encoder.weights)
    ema.use_averaged_networks(model)
    for variable, first, second, third in zip(model.encoder.trainable_variables, *seen):
        np.testing.assert_allclose(variable.numpy(), 0.25 * first + 0.25 * second + 0.5 * third, rtol=1e-5, atol=1e-7)
    assert statistics and not set(statistics) & set(changed_paths(model.encoder.weights, before))

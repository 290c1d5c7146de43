"""GAN3D / VAEGAN3D train steps: the discriminator gate, what each stage trains, noise, metrics, overfitting."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import (
    box_voxels,
    build_gan,
    build_vaegan,
    changed_paths,
    random_images,
    random_voxels,
    snapshot,
    train_steps,
    unchanged_paths,
)
from keras_vaegan import losses
from keras_vaegan.gan import PRIOR_STREAM_D, PRIOR_STREAM_G

GAN_METRICS = {"d_loss", "g_loss", "d_acc", "d_updated"}
VAEGAN_METRICS = GAN_METRICS | {"kl_loss", "recon_loss"}
ENCODER_METRICS = {"kl_loss", "recon_loss"}


def softplus(x):
    return float(np.log1p(np.exp(x)))


def constant_discriminator(model, logit=1.0):
    """Makes D answer `logit` for every input: zero last kernel, bias = logit.

    Then real calls are right and fake calls wrong: D's accuracy is exactly 0.5,
    and its losses are known in closed form.
    """
    last = model.discriminator.blocks[-1].conv
    last.kernel.assign(np.zeros(last.kernel.shape, "float32"))
    last.bias.assign(np.full(last.bias.shape, logit, "float32"))


# ---------------------------------------------------------------- the D gate


@pytest.mark.parametrize(
    "optimizer, threshold, updated",
    [
        ("sgd", 0.25, False),  # accuracy 0.5 > 0.25: D frozen
        ("sgd", 0.49, False),
        ("sgd", 0.5, True),  # "updated while its accuracy is at most the threshold": 0.5 <= 0.5
        ("adam", 0.25, False),  # a skipped update also leaves Adam's weights exactly
    ],
)
def test_discriminator_gate(optimizer, threshold, updated):
    model = build_gan(optimizer, 0.01, d_accuracy_threshold=threshold)
    constant_discriminator(model)
    d_before = snapshot(model.discriminator.trainable_variables)
    history = train_steps(model, random_voxels())
    assert history["d_acc"] == [0.5]
    assert history["d_updated"] == [1.0 if updated else 0.0]
    d_changed = changed_paths(model.discriminator.trainable_variables, d_before)
    if updated:
        assert "discriminator/block5/conv/kernel" in d_changed
        assert "discriminator/block5/conv/bias" in d_changed
    else:
        assert d_changed == []


def test_gate_follows_each_steps_accuracy_not_the_last_ones():
    """Step 1 is gated, step 2 is not: a gate read before it is written would swap them."""
    model = build_gan("sgd", 0.01, d_accuracy_threshold=0.25)
    constant_discriminator(model)
    voxels = random_voxels()
    before = snapshot(model.discriminator.trainable_variables)
    assert train_steps(model, voxels)["d_updated"] == [0.0]
    assert changed_paths(model.discriminator.trainable_variables, before) == []
    assert float(model.d_gate.numpy()) == 0.0
    model.d_accuracy_threshold = 0.5  # D still answers 1.0 everywhere: accuracy 0.5 <= 0.5
    model.train_function = None  # retrace with the new threshold
    assert train_steps(model, voxels)["d_updated"] == [1.0]
    assert changed_paths(model.discriminator.trainable_variables, before)


def test_discriminator_and_generator_losses_in_closed_form():
    """With every logit 1: d_loss = softplus(-1) + softplus(1), g_loss = softplus(-1)."""
    model = build_gan("sgd", 0.01, d_accuracy_threshold=0.25)  # gated: D still answers 1 in G's step
    constant_discriminator(model)
    history = train_steps(model, random_voxels())
    assert history["d_loss"][0] == pytest.approx(softplus(-1.0) + softplus(1.0), rel=1e-6)
    assert history["g_loss"][0] == pytest.approx(softplus(-1.0), rel=1e-6)


def test_label_smoothing_changes_the_discriminator_loss():
    losses = {}
    for smoothing in (0.0, 0.2):
        model = build_gan("sgd", 0.01, d_accuracy_threshold=0.25, label_smoothing=smoothing)
        constant_discriminator(model)
        losses[smoothing] = train_steps(model, random_voxels())["d_loss"][0]
    # Real targets 1 - 0.2: the BCE of logit 1 grows by 0.2 * 1; fake targets stay 0.
    assert losses[0.2] == pytest.approx(losses[0.0] + 0.2, rel=1e-6)
    assert losses[0.2] != losses[0.0]


def test_discriminator_updates_at_threshold_one():
    model = build_gan("sgd", 0.01, d_accuracy_threshold=1.0)
    before = snapshot(model.discriminator.trainable_variables)
    history = train_steps(model, random_voxels())
    assert history["d_updated"] == [1.0]
    assert 0.0 <= history["d_acc"][0] <= 1.0
    assert unchanged_paths(model.discriminator.trainable_variables, before) == []


def test_a_closed_gate_leaves_adam_exactly_as_it_was_and_an_open_one_steps_it():
    """As PyTorch's `if open: d_loss.backward(); d_opt.step()`: no moments, no iteration while closed."""
    model = build_gan("adam", 0.01, d_accuracy_threshold=0.25)
    constant_discriminator(model)
    voxels = random_voxels()
    d_before = snapshot(model.discriminator.trainable_variables)
    adam_before = snapshot(model.d_optimizer.variables)
    assert train_steps(model, voxels, steps=2)["d_updated"] == [0.0]
    assert changed_paths(model.discriminator.trainable_variables, d_before) == []
    assert changed_paths(model.d_optimizer.variables, adam_before) == []
    assert int(model.d_optimizer.iterations.numpy()) == 0 and int(model.g_optimizer.iterations.numpy()) == 2
    model.d_accuracy_threshold = 0.5
    model.train_function = None
    assert train_steps(model, voxels)["d_updated"] == [1.0]
    assert int(model.d_optimizer.iterations.numpy()) == 1
    changed = changed_paths(model.d_optimizer.variables, adam_before)
    # D's last layer is the only one with a gradient: the zero kernel blocks the ones before it.
    assert {f"{model.d_optimizer.name}/discriminator_block5_conv_{weight}_{moment}" for weight in ("kernel", "bias")
            for moment in ("momentum", "velocity")} <= set(changed)


def _assert_sgd_step(variables, before, gradients, learning_rate):
    """Each variable moved from `before` by -learning_rate times its gradient (to float32 round-off)."""
    for variable, old, gradient in zip(variables, before, gradients):
        step = (old - variable.numpy()) / learning_rate
        np.testing.assert_allclose(step, gradient.numpy(), rtol=1e-2, atol=1e-2 * np.abs(gradient.numpy()).max(),
                                   err_msg=variable.path)


def _closing_discriminator(model):
    """D's last bias at 5: D calls nearly everything real, so it is right on the real shapes and a
    threshold of 0 closes its gate, while G's gradients through D stay."""
    last = model.discriminator.blocks[-1].conv
    last.bias.assign(np.full(last.bias.shape, 5.0, "float32"))


GATES = pytest.mark.parametrize("threshold, d_updated", [(0.0, 0.0), (1.0, 1.0)], ids=["closed", "open"])


@GATES
def test_g_trains_on_the_shapes_of_ds_pass(threshold, d_updated):
    """G's update is the gradient of the G loss of D's prior draw, the shapes G made in D's pass: with the
    gate closed from that pass's logits, with it open through D again (D's learning rate ~0 here, so
    that D after its step is D before it)."""
    model = build_gan("sgd", 1.0, d_learning_rate=1e-12, d_accuracy_threshold=threshold)  # large G steps:
    _closing_discriminator(model)  # float32 holds their size
    voxels = random_voxels()
    variables = model.generator.trainable_variables
    before = snapshot(variables)
    with tf.GradientTape() as tape:
        fake = model.generator(model._replica_latent(len(voxels), PRIOR_STREAM_D), training=True)
        loss = tf.reduce_mean(model.generator_loss(model.discriminator(fake, training=True)))
    gradients = tape.gradient(loss, variables)
    history = train_steps(model, voxels)
    assert history["d_updated"] == [d_updated]
    assert history["g_loss"][0] == pytest.approx(float(loss), rel=1e-5)
    _assert_sgd_step(variables, before, gradients, 1.0)


@GATES
def test_the_vaegan_takes_l_gan_on_the_shapes_of_ds_pass_and_the_rest_from_its_own(threshold, d_updated):
    model = build_vaegan("sgd", 1.0, d_learning_rate=1e-12, d_accuracy_threshold=threshold, kl_weight=0.5,
                         reconstruction_weight=1e-3)
    _closing_discriminator(model)
    images, voxels = random_images(), random_voxels()
    variables = model.encoder_variables() + model.generator.trainable_variables
    before = snapshot(variables)
    with tf.GradientTape() as tape:
        fake = model.generator(model._replica_latent(len(voxels), PRIOR_STREAM_D), training=True)
        adversarial = model.generator_loss(model.discriminator(fake, training=True))
        mean, log_variance = model.encoder(images, training=True)
        reconstruction = model.generator(model._posterior_sample(mean, log_variance), training=True)
        loss = tf.reduce_mean(adversarial + 0.5 * losses.kl_divergence(mean, log_variance)
                              + 1e-3 * losses.reconstruction_loss(reconstruction, voxels))
    gradients = tape.gradient(loss, variables)
    history = train_steps(model, (images, voxels))
    assert history["d_updated"] == [d_updated]
    assert history["g_loss"][0] == pytest.approx(float(tf.reduce_mean(adversarial)), rel=1e-5)
    _assert_sgd_step(variables, before, gradients, 1.0)


# ---------------------------------------------------------------- what each stage trains


def test_joint_step_reaches_every_network():
    model = build_vaegan("sgd", 0.05, d_accuracy_threshold=1.0, kl_weight=1.0, reconstruction_weight=1e-2)
    assert model.stage == "joint"
    networks = {"encoder": model.encoder, "generator": model.generator, "discriminator": model.discriminator}
    before = {name: snapshot(net.trainable_variables) for name, net in networks.items()}
    history = train_steps(model, (random_images(), random_voxels()))
    assert set(history) == VAEGAN_METRICS
    assert history["d_updated"] == [1.0]
    for name, net in networks.items():
        assert unchanged_paths(net.trainable_variables, before[name]) == [], name


def test_encoder_stage_trains_only_the_encoder():
    model = build_vaegan("sgd", 0.05, d_accuracy_threshold=1.0)
    model.stage = "encoder"
    frozen = model.generator.weights + model.discriminator.weights  # BatchNorm statistics included
    frozen_before = snapshot(frozen)
    encoder_before = snapshot(model.encoder.trainable_variables)
    history = train_steps(model, (random_images(), random_voxels()))
    assert set(history) == ENCODER_METRICS
    assert changed_paths(frozen, frozen_before) == []
    assert unchanged_paths(model.encoder.trainable_variables, encoder_before) == []
    assert int(model.step.numpy()) == 1


def test_gan_stage_leaves_the_encoder_alone():
    model = build_vaegan("sgd", 0.05, d_accuracy_threshold=1.0)
    model.stage = "gan"
    encoder_before = snapshot(model.encoder.weights)
    gd = model.generator.trainable_variables + model.discriminator.trainable_variables
    gd_before = snapshot(gd)
    history = train_steps(model, (random_images(), random_voxels()))
    assert set(history) == GAN_METRICS
    assert changed_paths(model.encoder.weights, encoder_before) == []
    assert unchanged_paths(gd, gd_before) == []


def test_class_head_trains_with_the_encoder_and_reports_its_loss():
    model = build_vaegan("sgd", 0.05, d_accuracy_threshold=1.0, num_classes=3, class_weight=1.0)
    head_before = snapshot(model.class_head.trainable_variables)
    class_ids = np.array([0, 2], "int64")
    history = train_steps(model, (random_images(), random_voxels(), class_ids))
    assert set(history) == VAEGAN_METRICS | {"class_loss", "class_acc"}
    assert unchanged_paths(model.class_head.trainable_variables, head_before) == []
    model.stage = "encoder"
    frozen = model.generator.weights + model.discriminator.weights
    frozen_before, head_before = snapshot(frozen), snapshot(model.class_head.trainable_variables)
    history = train_steps(model, (random_images(), random_voxels(), class_ids))
    assert set(history) == ENCODER_METRICS | {"class_loss", "class_acc"}
    assert changed_paths(frozen, frozen_before) == []
    assert unchanged_paths(model.class_head.trainable_variables, head_before) == []


def test_class_head_learns_to_tell_two_pictures_apart():
    """Two pictures of two classes: the class loss falls below a tenth of log(2) and both are told apart."""
    keras.utils.set_random_seed(0)
    images = np.zeros((2, 32, 32, 3), "float32")
    images[0, :, :16] = 1.0
    images[1, 16:] = 1.0
    model = build_vaegan("adam", 1e-3, d_learning_rate=1e-5, kl_weight=1e-3, reconstruction_weight=1e-2,
                         num_classes=2, class_weight=1.0)
    history = train_steps(model, (images, random_voxels(), np.array([0, 1], "int64")), steps=15)
    assert history["class_loss"][-1] < 0.1 * np.log(2), history["class_loss"]
    assert list(np.argmax(model.classify(images), axis=-1)) == [0, 1]


def test_a_class_head_needs_class_ids():
    model = build_vaegan(num_classes=2, class_weight=1.0)
    with pytest.raises(ValueError, match="class ids"):
        train_steps(model, (random_images(), random_voxels()))


def test_stage_must_be_known():
    model = build_vaegan()
    with pytest.raises(ValueError, match="stage"):
        model.stage = "decoder"
    assert model.stage == "joint"


# ---------------------------------------------------------------- metrics and the step counter


def test_gan3d_metrics_and_step_counter():
    model = build_gan("sgd", 0.01)
    assert int(model.step.numpy()) == 0
    history = train_steps(model, random_voxels(), steps=3)
    assert set(history) == GAN_METRICS
    assert int(model.step.numpy()) == 3
    history = train_steps(model, random_voxels(), steps=2)
    assert int(model.step.numpy()) == 5
    assert all(np.isfinite(v).all() for v in history.values())
    assert [m.name for m in model.metrics] == ["d_loss", "g_loss", "d_acc", "d_updated"]


def test_vaegan3d_step_counter_spans_stages():
    model = build_vaegan("sgd", 0.01)
    data = (random_images(), random_voxels())
    train_steps(model, data, steps=2)
    model.stage = "gan"
    train_steps(model, data)
    model.stage = "encoder"
    train_steps(model, data, steps=2)
    assert int(model.step.numpy()) == 5


# ---------------------------------------------------------------- noise


def test_uniform_prior_is_in_the_unit_interval():
    model = build_gan(latent_prior="uniform")
    z = model.sample_latent(4096, tf.constant([0, 0], tf.int64)).numpy()
    assert z.shape == (4096, 200)
    assert z.min() >= 0.0 and z.max() < 1.0
    assert abs(z.mean() - 0.5) < 0.01


def test_normal_prior_has_negatives():
    model = build_gan(latent_prior="normal")
    z = model.sample_latent(4096, tf.constant([0, 0], tf.int64)).numpy()
    assert (z < 0).mean() == pytest.approx(0.5, abs=0.01)
    assert abs(z.mean()) < 0.01 and z.std() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("prior", ["uniform", "normal"])
def test_training_noise_follows_the_prior_and_changes_each_step(prior):
    model = build_gan(latent_prior=prior, seed=3)
    d_noise = model._replica_latent(512, PRIOR_STREAM_D).numpy()
    g_noise = model.prior_latent(512).numpy()
    assert not np.array_equal(d_noise, g_noise)  # independent streams for D's and G's updates
    np.testing.assert_array_equal(model._replica_latent(512, PRIOR_STREAM_G).numpy(), g_noise)
    assert (g_noise.min() < 0) == (prior == "normal")
    model.step.assign(1)
    assert not np.array_equal(model.prior_latent(512).numpy(), g_noise)  # new noise every step
    other_seed = build_gan(latent_prior=prior, seed=4)
    assert not np.array_equal(other_seed.prior_latent(512).numpy(), g_noise)


# ---------------------------------------------------------------- learning


def test_vaegan_overfits_two_pairs():
    """3D-VAE-GAN on two fixed (image, voxels) pairs: the reconstruction loss at least halves."""
    keras.utils.set_random_seed(0)
    resolution = 32
    voxels = np.stack(
        [box_voxels(resolution, (4, 4, 0), (28, 28, 8)), box_voxels(resolution, (10, 10, 0), (22, 22, 30))]
    )
    images = np.zeros((2, 32, 32, 3), "float32")
    images[0, :, :16] = 1.0  # left half lit: the flat slab
    images[1, 16:] = 1.0  # bottom half lit: the tower
    # Small KL weight, reconstruction weighted above the adversarial term; D at the paper's rate.
    model = build_vaegan(
        "adam", 1e-3, d_learning_rate=1e-5, e_learning_rate=1e-3, kl_weight=1e-3, reconstruction_weight=1e-2
    )
    steps = 15
    history = model.fit(
        np.concatenate([images] * steps),
        np.concatenate([voxels] * steps),
        batch_size=2,
        epochs=steps,
        steps_per_epoch=1,
        shuffle=False,
        verbose=0,
    ).history
    recon = history["recon_loss"]  # one step per epoch: each entry is one step's loss
    assert len(recon) == steps
    assert recon[0] == pytest.approx(0.25 * resolution**3, rel=0.1)  # G starts near 0.5 everywhere
    assert np.mean(recon[-3:]) <= 0.5 * recon[0], recon


def test_posterior_noise_rises_over_the_warmup():
    model = build_vaegan(noise_warmup_steps=10)
    for step, expected in ((0, 0.0), (5, 0.125), (10, 1.0), (30, 1.0)):
        model.step.assign(step)
        assert float(model.noise_scale()) == pytest.approx(expected)
    assert float(build_vaegan().noise_scale()) == 1.0


def test_warmup_samples_the_posterior_mean_first():
    model = build_vaegan(noise_warmup_steps=4)
    mean, log_variance = model.encode(random_images())
    np.testing.assert_array_equal(model._posterior_sample(mean, log_variance), mean)
    model.step.assign(4)
    noisy = model._posterior_sample(mean, log_variance)
    assert float(tf.reduce_max(tf.abs(noisy - mean))) > 0.1


def test_one_backward_pass_gives_the_chained_passes_gradients():
    """E's and G's gradients from one backward pass equal those of the chained passes kept for synchronized BN."""
    model = build_vaegan("sgd", 0.05, d_accuracy_threshold=1.0, kl_weight=1.0, reconstruction_weight=1e-2)
    model.reuses_generator_pass = lambda: False  # G's own prior pass in both, as with synchronized BN
    start = snapshot(model.weights)
    updated = {}
    for chained in (False, True):
        for variable, value in zip(model.weights, start):
            variable.assign(value)
        model.synchronized_batch_norm = chained  # selects the path only: the layers keep unsynchronized BN
        model.train_function = None
        train_steps(model, (random_images(), random_voxels()))
        updated[chained] = snapshot(model.weights)
    assert changed_paths(model.weights, start)
    for variable, one_pass, chained in zip(model.weights, updated[False], updated[True]):
        np.testing.assert_allclose(one_pass, chained, rtol=1e-5, atol=1e-6, err_msg=variable.path)

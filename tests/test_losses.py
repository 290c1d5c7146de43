"""keras_vaegan.losses against values computed by hand in numpy (float64)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_vaegan import losses

# Logits from saturated to uncertain, with the extremes where a naive
# log(sigmoid(x)) overflows in float32.
REAL = np.array([[3.0], [-1.5], [0.25], [60.0], [-80.0]], "float32")
FAKE = np.array([[-2.0], [0.5], [4.0], [-70.0], [90.0]], "float32")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def _bce(logits, target):
    """-t log s(x) - (1 - t) log(1 - s(x)), with log s(x) = -log(1 + e^-x) written stably."""
    x = np.asarray(logits, np.float64).reshape(-1)
    log_p = -np.logaddexp(0.0, -x)  # log sigmoid(x)
    log_not_p = -np.logaddexp(0.0, x)  # log (1 - sigmoid(x))
    return -(target * log_p + (1.0 - target) * log_not_p)


def _np(tensor):
    return np.asarray(tensor.numpy(), np.float64)


def test_bce_reference_matches_the_definition_where_it_is_finite():
    x = np.array([-3.0, -0.2, 0.0, 1.0, 5.0])
    p = _sigmoid(x)
    np.testing.assert_allclose(_bce(x, 0.9), -(0.9 * np.log(p) + 0.1 * np.log(1 - p)), rtol=1e-12)


def test_discriminator_loss_without_smoothing():
    got = losses.discriminator_loss(REAL, FAKE)
    assert got.shape == (5,) and got.dtype == tf.float32
    real = REAL.reshape(-1).astype(np.float64)
    fake = FAKE.reshape(-1).astype(np.float64)
    want = np.log1p(np.exp(-real)) + np.log1p(np.exp(fake))  # -log D(x) - log(1 - D(G(z)))
    np.testing.assert_allclose(_np(got), want, rtol=1e-5, atol=1e-6)
    # Hand values of the first example: -log s(3) - log(1 - s(-2)).
    assert got.numpy()[0] == pytest.approx(-np.log(_sigmoid(3.0)) - np.log(1 - _sigmoid(-2.0)), rel=1e-5)
    assert np.all(np.isfinite(got.numpy()))


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_discriminator_loss_with_one_sided_label_smoothing(smoothing):
    got = losses.discriminator_loss(REAL, FAKE, label_smoothing=smoothing)
    want = _bce(REAL, 1.0 - smoothing) + _bce(FAKE, 0.0)  # fakes keep target 0: one-sided
    np.testing.assert_allclose(_np(got), want, rtol=1e-5, atol=1e-5)
    # Smoothing raises the loss of confident, correct real logits.
    plain = losses.discriminator_loss(REAL, FAKE).numpy()
    assert got.numpy()[3] > plain[3] + 1.0


def test_discriminator_loss_accepts_bfloat16_logits():
    got = losses.discriminator_loss(tf.constant(REAL, tf.bfloat16), tf.constant(FAKE, tf.bfloat16))
    assert got.dtype == tf.float32
    real = tf.cast(tf.constant(REAL, tf.bfloat16), tf.float32).numpy()
    fake = tf.cast(tf.constant(FAKE, tf.bfloat16), tf.float32).numpy()
    np.testing.assert_allclose(_np(got), _bce(real, 1.0) + _bce(fake, 0.0), rtol=1e-5, atol=1e-6)


def test_non_saturating_generator_loss():
    got = losses.non_saturating_generator_loss(FAKE)
    assert got.shape == (5,) and got.dtype == tf.float32
    fake = FAKE.reshape(-1).astype(np.float64)
    np.testing.assert_allclose(_np(got), np.log1p(np.exp(-fake)), rtol=1e-5, atol=1e-6)  # -log D(G(z))
    assert got.numpy()[1] == pytest.approx(-np.log(_sigmoid(0.5)), rel=1e-6)
    # Non-saturating: the gradient stays large where D confidently rejects the fake.
    logits = tf.constant([[-20.0]])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = losses.non_saturating_generator_loss(logits)
    assert tape.gradient(loss, logits).numpy()[0, 0] == pytest.approx(-1.0, abs=1e-6)


def test_kl_divergence_by_hand():
    mean = np.array([[1.0, 2.0], [0.5, -0.5], [0.0, 0.0]], "float32")
    log_variance = np.array([[0.0, 0.0], [np.log(2.0), np.log(0.5)], [1.0, -1.0]], "float32")
    got = losses.kl_divergence(mean, log_variance)
    assert got.shape == (3,) and got.dtype == tf.float32
    # KL(N(m, s^2) || N(0, 1)) = 0.5 * (s^2 + m^2 - 1 - log s^2), summed over units.
    first = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (1 + 4 - 1 - 0)  # 2.5
    second = 0.5 * (2 + 0.25 - 1 - np.log(2)) + 0.5 * (0.5 + 0.25 - 1 - np.log(0.5))
    third = 0.5 * (np.e - 1 - 1) + 0.5 * (np.exp(-1) - 1 + 1)
    np.testing.assert_allclose(_np(got), [first, second, third], rtol=1e-6)
    assert first == 2.5


def test_kl_divergence_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = np.zeros((4, 200), "float32")
    np.testing.assert_array_equal(losses.kl_divergence(zeros, zeros).numpy(), np.zeros(4))
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(4, 200)).astype("float32")
    log_variance = rng.normal(size=(4, 200)).astype("float32")
    assert np.all(losses.kl_divergence(mean, log_variance).numpy() > 0)


def test_reconstruction_loss_sums_squared_error_per_example():
    rng = np.random.default_rng(1)
    reconstruction = rng.random((3, 4, 4, 4, 1)).astype("float32")
    voxels = (rng.random((3, 4, 4, 4, 1)) > 0.5).astype("float32")
    got = losses.reconstruction_loss(reconstruction, voxels)
    assert got.shape == (3,) and got.dtype == tf.float32
    want = [np.sum((reconstruction[i].astype(np.float64) - voxels[i]) ** 2) for i in range(3)]
    np.testing.assert_allclose(_np(got), want, rtol=1e-5)
    # Hand value: all-0.5 predictions against an all-empty 2^3 grid: 8 * 0.25.
    half = np.full((1, 2, 2, 2, 1), 0.5, "float32")
    assert losses.reconstruction_loss(half, np.zeros_like(half)).numpy()[0] == pytest.approx(2.0)
    assert losses.reconstruction_loss(voxels, voxels).numpy().tolist() == [0.0, 0.0, 0.0]


def test_reconstruction_loss_mixes_dtypes():
    reconstruction = tf.constant(np.full((2, 2, 2, 2, 1), 0.25), tf.bfloat16)
    voxels = np.ones((2, 2, 2, 2, 1), bool)
    got = losses.reconstruction_loss(reconstruction, voxels)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), [8 * 0.5625] * 2, rtol=1e-6)


def test_discriminator_accuracy_by_hand():
    real = np.array([[2.0], [-1.0], [0.0], [5.0]], "float32")
    fake = np.array([[-3.0], [-0.5], [0.0], [1.0]], "float32")
    got = losses.discriminator_accuracy(real, fake)
    assert got.dtype == tf.float32
    # real right?  yes  no  no (0 is not > 0)  yes
    # fake right?  yes  yes yes (0 counts as fake)  no
    np.testing.assert_array_equal(got.numpy(), [1.0, 0.5, 0.5, 0.5])
    assert float(tf.reduce_mean(got)) == 0.625


def test_discriminator_accuracy_of_bfloat16_logits():
    real = tf.constant([[1.0], [-1.0]], tf.bfloat16)
    fake = tf.constant([[-1.0], [-1.0]], tf.bfloat16)
    np.testing.assert_array_equal(losses.discriminator_accuracy(real, fake).numpy(), [1.0, 0.5])


def test_global_mean_divides_the_sum_by_the_global_batch():
    per_example = tf.constant([1.0, 2.0, 3.0, 6.0])
    assert float(losses.global_mean(per_example, 4)) == pytest.approx(3.0)
    # One replica's share of a global batch of 8: sum / 8, not the local mean.
    assert float(losses.global_mean(per_example, 8)) == pytest.approx(12.0 / 8)
    assert float(losses.global_mean(per_example, tf.constant(16))) == pytest.approx(12.0 / 16)


def test_class_loss_is_cross_entropy_and_zero_for_unknown_classes():
    logits = tf.constant([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    class_ids = tf.constant([0, 0, -1], tf.int64)
    expected = [np.log1p(np.exp(-2.0)), np.log1p(np.exp(2.0)), 0.0]
    np.testing.assert_allclose(losses.class_loss(logits, class_ids).numpy(), expected, rtol=1e-6)
    assert losses.class_accuracy(logits, class_ids).numpy().tolist() == [1.0, 0.0, 0.0]


def test_hinge_losses_by_hand():
    got = losses.hinge_discriminator_loss(REAL, FAKE)
    real, fake = REAL.reshape(-1).astype(np.float64), FAKE.reshape(-1).astype(np.float64)
    np.testing.assert_allclose(_np(got), np.maximum(0, 1 - real) + np.maximum(0, 1 + fake), rtol=1e-6)
    assert got.numpy()[0] == pytest.approx(0.0)  # real logit 3 and fake logit -2: both past the margin
    assert got.numpy()[1] == pytest.approx(2.5 + 1.5)
    np.testing.assert_allclose(_np(losses.critic_generator_loss(FAKE)), -fake, rtol=1e-6)


def test_wasserstein_critic_loss_by_hand():
    got = losses.wasserstein_discriminator_loss(REAL, FAKE)
    np.testing.assert_allclose(_np(got), (FAKE - REAL).reshape(-1), rtol=1e-6)


def test_gradient_penalties_by_hand():
    gradients = np.zeros((3, 2, 2, 2, 1), "float32")
    gradients[0, 0, 0, 0, 0] = 3.0
    gradients[0, 1, 1, 1, 0] = 4.0  # norm 5
    gradients[1, 0, 1, 0, 0] = 1.0  # norm 1
    np.testing.assert_allclose(_np(losses.squared_gradient_norm(gradients)), [25.0, 1.0, 0.0])
    np.testing.assert_allclose(_np(losses.r1_penalty(gradients)), [12.5, 0.5, 0.0])
    np.testing.assert_allclose(_np(losses.interpolate_penalty(gradients)), [16.0, 0.0, 1.0], atol=1e-5)

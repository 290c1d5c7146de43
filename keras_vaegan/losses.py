"""Losses as pure functions of tensors, per example (reduce with `global_mean`).

Every function returns one value per example so that the caller can average
over the global batch of a distribution strategy (see `global_mean`).
"""

import tensorflow as tf


def _bce_with_logits(logits, label):
    logits = tf.reshape(tf.cast(logits, tf.float32), [-1])
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label), logits=logits)


def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    """-log D(x) - log(1 - D(G(z))), real targets 1 - label_smoothing (one-sided)."""
    return _bce_with_logits(real_logits, 1.0 - label_smoothing) + _bce_with_logits(fake_logits, 0.0)


def non_saturating_generator_loss(fake_logits):
    """-log D(G(z)): the non-saturating generator loss of Goodfellow et al."""
    return _bce_with_logits(fake_logits, 1.0)


def _flat_logits(logits):
    return tf.reshape(tf.cast(logits, tf.float32), [-1])


def hinge_discriminator_loss(real_logits, fake_logits):
    """max(0, 1 - D(x)) + max(0, 1 + D(G(z))) (Lim and Ye 2017; Miyato et al. 2018)."""
    return tf.nn.relu(1.0 - _flat_logits(real_logits)) + tf.nn.relu(1.0 + _flat_logits(fake_logits))


def wasserstein_discriminator_loss(real_logits, fake_logits):
    """D(G(z)) - D(x): the critic's side of the Wasserstein estimate (Arjovsky et al. 2017)."""
    return _flat_logits(fake_logits) - _flat_logits(real_logits)


def critic_generator_loss(fake_logits):
    """-D(G(z)): the generator's loss under the hinge and Wasserstein losses."""
    return -_flat_logits(fake_logits)


def squared_gradient_norm(gradients):
    """||g||^2 per example of a (batch, ...) gradient."""
    gradients = tf.cast(gradients, tf.float32)
    return tf.reduce_sum(tf.square(tf.reshape(gradients, [tf.shape(gradients)[0], -1])), axis=-1)


def r1_penalty(real_gradients):
    """0.5 ||grad_x D(x)||^2 on real shapes (Mescheder et al. 2018); times the weight gamma."""
    return 0.5 * squared_gradient_norm(real_gradients)


def interpolate_penalty(interpolate_gradients):
    """(||grad D(x_hat)|| - 1)^2 on interpolates of real and fake (WGAN-GP, Gulrajani et al. 2017)."""
    return tf.square(tf.sqrt(squared_gradient_norm(interpolate_gradients) + 1e-12) - 1.0)


def kl_divergence(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, I)), summed over latent units."""
    mean = tf.cast(mean, tf.float32)
    log_variance = tf.cast(log_variance, tf.float32)
    return -0.5 * tf.reduce_sum(1.0 + log_variance - tf.square(mean) - tf.exp(log_variance), axis=-1)


def reconstruction_loss(reconstruction, voxels):
    """||G(E(y)) - x||_2^2: squared error summed over the voxels of each example."""
    difference = tf.cast(reconstruction, tf.float32) - tf.cast(voxels, tf.float32)
    return tf.reduce_sum(tf.square(tf.reshape(difference, [tf.shape(difference)[0], -1])), axis=-1)


def class_loss(logits, class_ids):
    """Cross-entropy of class logits against class ids; 0 for examples of unknown class (id < 0)."""
    known = class_ids >= 0
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(known, class_ids, tf.zeros_like(class_ids)), logits=tf.cast(logits, tf.float32)
    )
    return tf.where(known, per_example, 0.0)


def class_accuracy(logits, class_ids):
    """Per-example 1 when the top logit is the class id, else 0 (also for unknown classes)."""
    return tf.cast(tf.argmax(logits, axis=-1) == class_ids, tf.float32)


def discriminator_accuracy(real_logits, fake_logits):
    """Per-example fraction of correct real/fake calls (logit > 0 means real)."""
    real_correct = tf.cast(tf.reshape(real_logits, [-1]) > 0, tf.float32)
    fake_correct = tf.cast(tf.reshape(fake_logits, [-1]) <= 0, tf.float32)
    return 0.5 * (real_correct + fake_correct)


def global_mean(per_example, global_batch_size):
    """Mean over the global batch: sums across replicas give the true mean.

    Under a tf.distribute strategy each replica sees a slice of the batch; the
    optimizers sum gradients over replicas, so each replica divides by the
    global batch size, not its own.
    """
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)

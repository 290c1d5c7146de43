"""FusedBatchNormalization against Keras' own BatchNormalization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vaegan.layers import FusedBatchNormalization


def _normalize_and_differentiate(layer, inputs, output_weights):
    layer.build(inputs.shape)
    channels = inputs.shape[-1]
    layer.gamma.assign(np.linspace(0.5, 2.0, channels))
    layer.beta.assign(np.linspace(-1.0, 1.0, channels))
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, training=True)
        loss = tf.reduce_sum(outputs * output_weights)
    gradients = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
    return [outputs, *gradients, layer.moving_mean, layer.moving_variance]


@pytest.mark.parametrize("shape", [(4, 6, 6, 6, 8), (3, 10, 10, 5), (2, 1, 1, 1, 4)])
def test_fused_batch_norm_matches_keras_in_training(shape):
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(2.0, 3.0, shape), tf.float32)
    output_weights = tf.constant(rng.normal(size=shape), tf.float32)
    ours = _normalize_and_differentiate(FusedBatchNormalization(momentum=0.9, epsilon=1e-5), inputs, output_weights)
    keras_own = _normalize_and_differentiate(
        keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5), inputs, output_weights
    )
    names = ["outputs", "d/dinputs", "d/dgamma", "d/dbeta", "moving_mean", "moving_variance"]
    for name, a, b in zip(names, ours, keras_own):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=name)
    assert float(tf.reduce_max(tf.abs(ours[4]))) > 0.1  # the moving mean moved


def test_fused_batch_norm_keeps_bfloat16_and_inference_is_keras(restore_dtype_policy):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    inputs = tf.constant(np.random.default_rng(1).normal(size=(2, 4, 4, 4, 3)), tf.bfloat16)
    ours, keras_own = FusedBatchNormalization(), keras.layers.BatchNormalization()
    for layer in (ours, keras_own):
        layer.build(inputs.shape)
        layer.moving_mean.assign([0.5, -0.5, 1.0])
    np.testing.assert_array_equal(ours(inputs, training=False), keras_own(inputs, training=False))
    assert ours(inputs, training=True).dtype == tf.bfloat16

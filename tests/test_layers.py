"""FusedBatchNormalization and OutputGradientLeakyReLU against Keras' own layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vaegan.layers import ConvUnit, FusedBatchNormalization, OutputGradientLeakyReLU


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


@pytest.mark.parametrize("policy, dtype", [("float32", tf.float32), ("mixed_bfloat16", tf.bfloat16)])
def test_output_gradient_leaky_relu_matches_keras(policy, dtype):
    values = np.random.default_rng(2).normal(size=(3, 4, 5))
    values[0, 0, :] = 0.0  # at zero both take the slope
    inputs = tf.constant(values, dtype)
    output_weights = tf.constant(np.random.default_rng(3).normal(size=(3, 4, 5)), dtype)
    results = []
    for layer_class in (OutputGradientLeakyReLU, keras.layers.LeakyReLU):
        layer = layer_class(negative_slope=0.2, dtype=policy)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(outputs * output_weights)
        results.append((outputs, tape.gradient(loss, inputs), layer(inputs, training=False)))
    for ours, keras_own in zip(*results):
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours, keras_own)


def test_leaky_relu_units_keep_outputs_not_inputs_for_the_backward_pass():
    """LeakyReluGrad reads LeakyRelu's outputs, so BatchNorm's output is freed after the forward pass."""
    unit = ConvUnit(8, 4, 2, activation="leaky_relu")
    unit.build((2, 8, 8, 8, 1))

    @tf.function
    def gradients(voxels):
        with tf.GradientTape() as tape:
            tape.watch(voxels)
            loss = tf.reduce_sum(unit(voxels, training=True))
        return tape.gradient(loss, voxels)

    graph = gradients.get_concrete_function(tf.TensorSpec((2, 8, 8, 8, 1))).graph
    backward = [op for op in graph.get_operations() if op.type == "LeakyReluGrad"]
    assert len(backward) == 1
    assert backward[0].inputs[1].op.type == "LeakyRelu"

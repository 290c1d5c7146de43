"""rearranged_conv and the layers using it against TensorFlow's and Keras' own convolutions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vaegan import rearranged_conv
from keras_vaegan.generator import Generator
from keras_vaegan.layers import RearrangedConv3D, RearrangedConv3DTranspose

# (filters, kernel, stride, padding, input shape): the models' layers that take a rearranged path (G's first
# and last, D's first and last, at 32^3 and 64^3 geometry with fewer channels), then other geometries.
TRANSPOSED = [
    (1, 4, 2, "same", (2, 8, 8, 8, 6)),
    (16, 4, 2, "same", (3, 1, 1, 1, 20)),
    (16, 4, 2, "valid", (3, 1, 1, 1, 20)),
    (1, 3, 2, "same", (2, 5, 6, 4, 3)),
    (1, 5, 3, "same", (2, 3, 4, 2, 3)),
    (1, 2, 2, "valid", (2, 5, 6, 4, 3)),
    (1, 4, 2, "valid", (2, 5, 6, 4, 3)),
    (1, 4, 1, "same", (2, 5, 6, 4, 3)),
]
CONVOLUTIONS = [
    (6, 4, 2, "same", (2, 16, 16, 16, 1)),
    (1, 4, 2, "same", (3, 2, 2, 2, 20)),
    (1, 4, 2, "valid", (3, 4, 4, 4, 20)),
    (4, 3, 2, "same", (2, 12, 6, 8, 1)),
    (4, 5, 3, "same", (2, 18, 9, 12, 1)),
    (4, 4, 2, "valid", (2, 12, 6, 8, 1)),
]


def _training_outputs_and_gradients(layer, inputs):
    rng = np.random.default_rng(1)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, training=True)
        weights = tf.constant(rng.normal(size=outputs.shape), outputs.dtype)
        loss = tf.reduce_sum(outputs * weights)
    return [outputs, *tape.gradient(loss, [inputs, *layer.trainable_weights])]


def _compare_with_keras(ours, keras_own, shape):
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(size=shape), tf.float32)
    ours.build(shape)
    keras_own.build(shape)
    ours.set_weights([rng.normal(size=weight.shape) for weight in ours.get_weights()])
    keras_own.set_weights(ours.get_weights())
    names = ["outputs", "d/dinputs", "d/dkernel", "d/dbias"]
    for name, a, b in zip(names, _training_outputs_and_gradients(ours, inputs),
                          _training_outputs_and_gradients(keras_own, inputs)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(tf.reduce_max(tf.abs(b))), err_msg=name)


@pytest.mark.parametrize("filters, kernel, stride, padding, shape", TRANSPOSED)
def test_transposed_convolution_matches_keras_in_training(filters, kernel, stride, padding, shape):
    _compare_with_keras(RearrangedConv3DTranspose(filters, kernel, stride, padding=padding),
                        keras.layers.Conv3DTranspose(filters, kernel, stride, padding=padding), shape)


@pytest.mark.parametrize("filters, kernel, stride, padding, shape", CONVOLUTIONS)
def test_convolution_matches_keras_in_training(filters, kernel, stride, padding, shape):
    _compare_with_keras(RearrangedConv3D(filters, kernel, stride, padding=padding),
                        keras.layers.Conv3D(filters, kernel, stride, padding=padding), shape)


@pytest.mark.parametrize("filters, kernel, stride, padding, shape", TRANSPOSED)
def test_the_transposed_cases_are_rearranged(filters, kernel, stride, padding, shape):
    """The comparisons above test the rearranged paths, not Keras against itself."""
    inputs = tf.zeros(shape)
    kernel_tensor = tf.zeros((kernel, kernel, kernel, filters, shape[-1]))
    layer = keras.layers.Conv3DTranspose(filters, kernel, stride, padding=padding)
    output_spatial = layer.compute_output_shape(shape)[1:4]
    strides = (stride,) * 3
    assert rearranged_conv.conv3d_transpose(inputs, kernel_tensor, output_spatial, strides, padding.upper()) is not None


@pytest.mark.parametrize("filters, kernel, stride, padding, shape", CONVOLUTIONS)
def test_the_convolution_cases_are_rearranged(filters, kernel, stride, padding, shape):
    inputs = tf.zeros(shape)
    kernel_tensor = tf.zeros((kernel, kernel, kernel, shape[-1], filters))
    output_spatial = keras.layers.Conv3D(filters, kernel, stride, padding=padding).compute_output_shape(shape)[1:4]
    assert rearranged_conv.conv3d(inputs, kernel_tensor, output_spatial, (stride,) * 3, padding.upper()) is not None


def test_other_convolutions_are_left_to_tensorflow():
    """Several channels on both sides, or an output that is not whole phase blocks: None (the stock op)."""
    assert rearranged_conv.conv3d_transpose(tf.zeros((1, 2, 2, 2, 4)), tf.zeros((4, 4, 4, 2, 4)), (4, 4, 4),
                                            (2, 2, 2), "SAME") is None
    assert rearranged_conv.conv3d_transpose(tf.zeros((1, 5, 5, 5, 4)), tf.zeros((3, 3, 3, 1, 4)), (11, 11, 11),
                                            (2, 2, 2), "VALID") is None
    assert rearranged_conv.conv3d(tf.zeros((1, 8, 8, 8, 3)), tf.zeros((4, 4, 4, 3, 4)), (4, 4, 4),
                                  (2, 2, 2), "SAME") is None
    assert rearranged_conv.conv3d(tf.zeros((1, 9, 9, 9, 1)), tf.zeros((4, 4, 4, 1, 4)), (5, 5, 5),
                                  (2, 2, 2), "SAME") is None


def test_phase_taps_of_the_models_layers():
    """Kernel 4, stride 2, padding 1: even outputs read taps 1 and 3 at input offsets 0 and -1, odd ones
    taps 0 and 2 at offsets +1 and 0."""
    selection, lowest = rearranged_conv.phase_taps(4, 2, 1)
    assert lowest == -1
    expected = np.zeros((3, 2, 4))
    expected[1, 0, 1] = expected[0, 0, 3] = expected[2, 1, 0] = expected[1, 1, 2] = 1
    np.testing.assert_array_equal(selection, expected)


def test_inference_runs_the_stock_ops():
    """Exported graphs keep TensorFlow's convolutions: only training is rearranged."""
    layer = RearrangedConv3DTranspose(1, 4, 2, padding="same")
    layer.build((1, 4, 4, 4, 3))

    def op_types(training):
        function = tf.function(lambda x: layer(x, training=training))
        graph = function.get_concrete_function(tf.TensorSpec((1, 4, 4, 4, 3))).graph
        return {op.type for op in graph.get_operations()}

    assert "Conv3DBackpropInputV2" in op_types(False)
    assert "Conv3DBackpropInputV2" not in op_types(True)


def test_bfloat16_stays_bfloat16_and_close_to_keras(restore_dtype_policy):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    rng = np.random.default_rng(2)
    inputs = tf.constant(rng.normal(size=(2, 8, 8, 8, 6)), tf.bfloat16)
    ours = RearrangedConv3DTranspose(1, 4, 2, padding="same")
    keras_own = keras.layers.Conv3DTranspose(1, 4, 2, padding="same")
    for layer in (ours, keras_own):
        layer.build(inputs.shape)
    keras_own.set_weights(ours.get_weights())
    outputs = ours(inputs, training=True)
    assert outputs.dtype == tf.bfloat16
    expected = keras_own(inputs, training=True)
    np.testing.assert_allclose(tf.cast(outputs, tf.float32), tf.cast(expected, tf.float32),
                               atol=2e-2 * float(tf.reduce_max(tf.abs(tf.cast(expected, tf.float32)))))


def test_generator_trains_through_the_rearranged_layers(monkeypatch):
    """G's training pass (first and last layer rearranged) equals its stock pass, in outputs and gradients."""
    generator = Generator(resolution=32, latent_dim=8)
    generator.build((None, 8))
    z = tf.constant(np.random.default_rng(3).normal(size=(4, 8)), tf.float32)
    rearranged = rearranged_conv.conv3d_transpose
    calls = []

    def counted(*args):
        outputs = rearranged(*args)
        calls.append(outputs is not None)
        return outputs

    results = []
    for replacement in (counted, lambda *args: None):
        monkeypatch.setattr(rearranged_conv, "conv3d_transpose", replacement)
        with tf.GradientTape() as tape:
            occupancy = generator(z, training=True)
            loss = tf.reduce_sum(occupancy * tf.linspace(0.0, 1.0, 32)[None, :, None, None, None])
        results.append([occupancy, *tape.gradient(loss, generator.trainable_weights)])
    assert calls == [True, False, False, False, True]
    for a, b in zip(*results):  # float32 rounding, amplified by BatchNorm over 4 examples
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * float(tf.reduce_max(tf.abs(b))))


def test_unknown_spatial_shapes_are_left_to_tensorflow():
    transposed = RearrangedConv3DTranspose(1, 4, 2, padding="same")
    convolution = RearrangedConv3D(4, 4, 2, padding="same")
    graphs = [
        tf.function(lambda x: transposed(x, training=True)).get_concrete_function(tf.TensorSpec((2, None, 4, 4, 3))),
        tf.function(lambda x: convolution(x, training=True)).get_concrete_function(tf.TensorSpec((2, None, 8, 8, 1))),
    ]
    assert [graph.output_shapes[1:] for graph in graphs] == [(None, 8, 8, 1), (None, 4, 4, 4)]

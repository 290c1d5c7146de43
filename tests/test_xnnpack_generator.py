"""export.xnnpack_generator: the 2D re-formulation of the generator matches it, in Keras and in TFLite."""

import keras
import numpy as np
import pytest

from export.xnnpack_generator import (
    DepthSlicedConvTranspose,
    convert_to_tflite,
    folded_kernel_and_bias,
    runs_entirely_on_xnnpack,
    tflite_op_types,
    xnnpack_friendly_generator,
)
from keras_vaegan.generator import Generator

LATENT = 200
# Builtins the XNNPACK delegate takes (no CONV_3D, CONV_3D_TRANSPOSE, PACK), as the re-formulation may use them.
XNNPACK_OPS = set(
    "ADD CONCATENATION CONV_2D DEPTH_TO_SPACE FULLY_CONNECTED LOGISTIC PAD RESHAPE SPLIT STRIDED_SLICE TRANSPOSE_CONV".split()
)


def _generator(resolution, seed=0, logit_gain=1.0):
    """A built Generator with random weights, non-trivial BatchNorm parameters and moving statistics.

    `logit_gain` scales the last kernel and bias so probabilities spread over
    (0, 1) instead of hugging 0.5 (as freshly initialized weights do).
    """
    rng = np.random.default_rng(seed)
    generator = Generator(resolution, LATENT)
    generator.build((1, LATENT))
    for unit in generator.blocks:
        if unit.norm is not None:
            norm, filters = unit.norm, unit.filters
            norm.gamma.assign(rng.uniform(0.5, 1.5, filters).astype("float32"))
            norm.beta.assign(rng.normal(0, 0.2, filters).astype("float32"))
            norm.moving_mean.assign(rng.normal(0, 0.05, filters).astype("float32"))
            norm.moving_variance.assign(rng.uniform(0.2, 2.0, filters).astype("float32"))
    last = generator.blocks[-1].conv
    last.kernel.assign(last.kernel.numpy() * logit_gain)
    last.bias.assign(rng.normal(0, 0.5, last.bias.shape).astype("float32"))
    return generator


def _latent(seed=1):
    return np.random.default_rng(seed).normal(size=(1, LATENT)).astype("float32")


def _expected(generator, z):
    return keras.ops.convert_to_numpy(generator(z, training=False))[..., 0]


def _run_tflite(flatbuffer, z):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer, num_threads=2)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], z)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _iou(a, b, threshold=0.5):
    a, b = a >= threshold, b >= threshold
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


@pytest.fixture(scope="module")
def generator_32():
    return _generator(32, logit_gain=30.0)


@pytest.fixture(scope="module")
def tflite_32(generator_32):
    return convert_to_tflite(xnnpack_friendly_generator(generator_32))


@pytest.mark.parametrize("form", ["transpose", "subpixel"])
@pytest.mark.parametrize("depth", [2, 3])
def test_depth_sliced_layer_equals_conv3d_transpose_same(depth, form):
    rng = np.random.default_rng(depth)
    volume = rng.normal(size=(1, depth, 3, 2, 5)).astype("float32")
    reference = keras.layers.Conv3DTranspose(6, 4, strides=2, padding="same")
    reference.build(volume.shape)
    reference.bias.assign(rng.normal(size=6).astype("float32"))
    expected = keras.ops.convert_to_numpy(reference(volume))
    layer = DepthSlicedConvTranspose(6, activation=None, form=form)
    layer.build(volume.shape[1:])
    layer.set_weights([reference.kernel.numpy(), reference.bias.numpy()])
    got = keras.ops.convert_to_numpy(layer(volume[0]))
    assert got.shape == expected.shape[1:]
    np.testing.assert_allclose(got, expected[0], atol=1e-5)


def test_batch_norm_folding_matches_inference_batch_norm():
    unit = _generator(32).blocks[1]
    kernel, bias = folded_kernel_and_bias(unit)
    volume = np.random.default_rng(2).normal(size=(1, 2, 2, 2, unit.conv.kernel.shape[-1])).astype("float32")
    expected = unit.norm(unit.conv(volume), training=False)
    folded = keras.ops.conv_transpose(volume, kernel, strides=2, padding="same") + bias
    np.testing.assert_allclose(keras.ops.convert_to_numpy(folded), keras.ops.convert_to_numpy(expected), atol=1e-5)


@pytest.mark.parametrize("resolution", [32, 64])
def test_keras_reformulation_matches_generator(resolution):
    generator = _generator(resolution, seed=resolution, logit_gain=30.0)
    z = _latent()
    model = xnnpack_friendly_generator(generator)
    expected = _expected(generator, z)
    assert expected.std() > 0.1  # the probabilities spread: a wrong layout could not match by chance
    got = keras.ops.convert_to_numpy(model(z))
    assert got.shape == (1, resolution, resolution, resolution)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-5


def test_tflite_float32_matches_keras_and_has_only_2d_ops(generator_32, tflite_32):
    z = _latent(seed=3)
    got = _run_tflite(tflite_32, z)
    assert got.shape == (1, 32, 32, 32)
    assert np.abs(got - _expected(generator_32, z)).max() <= 1e-5
    ops = tflite_op_types(tflite_32)
    assert {"FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_2D", "DEPTH_TO_SPACE"} <= set(ops)
    assert set(ops) <= XNNPACK_OPS


def test_xnnpack_takes_the_whole_reformulated_graph(tflite_32):
    assert runs_entirely_on_xnnpack(tflite_32)


def test_plain_conv3d_transpose_is_seen_and_not_fully_delegated(tmp_path):
    inputs = keras.Input(batch_shape=(1, 2, 2, 2, 3))
    hidden = keras.layers.Conv3DTranspose(4, 4, strides=2, padding="same")(inputs)
    model = keras.Model(inputs, keras.layers.ReLU()(hidden))
    path = tmp_path / "plain.tflite"
    path.write_bytes(convert_to_tflite(model))
    assert "CONV_3D_TRANSPOSE" in tflite_op_types(path)
    assert not runs_entirely_on_xnnpack(path)


def test_float16_keeps_the_occupancy(generator_32):
    z = _latent(seed=4)
    expected = _expected(generator_32, z)
    assert 0.05 < (expected >= 0.5).mean() < 0.95
    got = _run_tflite(convert_to_tflite(xnnpack_friendly_generator(generator_32), "float16"), z)
    assert _iou(got, expected) >= 0.99


def test_int8_needs_a_representative_dataset_and_stays_2d(generator_32):
    model = xnnpack_friendly_generator(generator_32)
    with pytest.raises(ValueError, match="representative_dataset"):
        convert_to_tflite(model, "int8")
    with pytest.raises(ValueError, match="quantization"):
        convert_to_tflite(model, "int4")
    samples = [_latent(seed) for seed in range(8)]
    flatbuffer = convert_to_tflite(model, "int8", lambda: ([z] for z in samples))
    assert not {"CONV_3D", "CONV_3D_TRANSPOSE"} & set(tflite_op_types(flatbuffer))
    z = _latent(seed=5)
    assert _iou(_run_tflite(flatbuffer, z), _expected(generator_32, z)) >= 0.9


def test_tflite_float32_matches_keras_at_64():
    generator = _generator(64, seed=64, logit_gain=30.0)
    flatbuffer = convert_to_tflite(xnnpack_friendly_generator(generator))
    z = _latent(seed=6)
    assert np.abs(_run_tflite(flatbuffer, z) - _expected(generator, z)).max() <= 1e-5
    assert runs_entirely_on_xnnpack(flatbuffer)


def test_float32_under_a_mixed_precision_policy(restore_dtype_policy):
    generator = _generator(32, seed=7, logit_gain=30.0)
    z = _latent(seed=7)
    expected = _expected(generator, z)
    keras.config.set_dtype_policy("mixed_bfloat16")
    got = xnnpack_friendly_generator(generator)(z)
    assert got.dtype == "float32"
    assert np.abs(keras.ops.convert_to_numpy(got) - expected).max() <= 1e-5

"""Discriminator-feature classification and the latent-space helpers, on tiny untrained models."""

import keras
import numpy as np
import pytest

from conftest import box_voxels
from keras_vaegan.discriminator import Discriminator
from keras_vaegan.evaluation import classify, latent
from keras_vaegan.generator import Generator


@pytest.fixture(scope="module")
def discriminator():
    keras.utils.set_random_seed(0)  # its random weights, not whatever ran before in this worker, decide the SVM
    model = Discriminator(resolution=32)
    model.build((None, 32, 32, 32, 1))
    return model


@pytest.fixture(scope="module")
def generator():
    model = Generator(resolution=32, latent_dim=8)
    model.build((None, 8))
    last = model.blocks[-1].conv  # spread the probabilities as after training
    last.kernel.assign(last.kernel.numpy() * 20)
    return model


def test_max_pooling_to_a_two_cube_takes_the_maximum_of_each_octant():
    maps = np.random.default_rng(0).random((2, 8, 8, 8, 3)).astype(np.float32)
    pooled = classify._max_pool_to_grid(maps).numpy().reshape(2, 2, 2, 2, 3)
    assert pooled[1, 0, 1, 0, 2] == maps[1, :4, 4:, :4, 2].max()
    assert classify._max_pool_to_grid(maps[:, :2, :2, :2]).shape == (2, 24)  # already 2^3: unchanged


def test_features_concatenate_layers_two_to_four_pooled_to_two_cubes(discriminator):
    grids = np.zeros((3, 32, 32, 32), bool)
    features = classify.discriminator_features(discriminator, grids, batch_size=2)
    assert features.shape == (3, (64 + 128 + 256) * 8) and features.dtype == np.float32


def test_linear_svm_separates_two_synthetic_classes(discriminator):
    rng = np.random.default_rng(1)
    shapes, labels = [], []
    for i in range(24):
        low = rng.integers(2, 6, 3)
        if i % 2:
            shapes.append(box_voxels(32, low, low + [20, 20, 6])[..., 0])  # flat slabs
            labels.append("slab")
        else:
            shapes.append(box_voxels(32, low, low + [6, 6, 24])[..., 0])  # tall posts
            labels.append("post")
    features = classify.discriminator_features(discriminator, np.stack(shapes))
    classifier = classify.train_classifier(features[:16], labels[:16])
    result = classify.classification_metrics(classifier, features[16:], labels[16:], ["post", "slab"])
    assert result["accuracy"] == 1.0 and result["per_class_accuracy"] == {"post": 1.0, "slab": 1.0}
    assert result["confusion"] == [[4, 0], [0, 4]]


def test_interpolation_and_arithmetic_vectors():
    a, b, c = np.zeros(3), np.ones(3), np.full(3, 3.0)
    strip = latent.interpolate(a, b, 5)
    np.testing.assert_allclose(strip[[0, 2, 4]], [a, b / 2, b])
    np.testing.assert_allclose(latent.arithmetic(a, b, c)[3], a - b + c)


def test_unit_switch_keeps_the_generator_with_all_units_on_and_counts_changes(generator):
    z = np.random.default_rng(2).standard_normal((3, 8)).astype(np.float32)
    plain = generator(z, training=False).numpy()[..., 0]
    units = generator.blocks[0].filters
    np.testing.assert_allclose(latent.generate_with_first_layer_scaled(generator, z, np.ones(units)), plain,
                               atol=1e-6)
    effects = latent.unit_effects(generator, z)
    assert effects.shape == (units, 3) and effects.any()
    rows = latent.unit_rows(generator, z, effects, count=2)
    unit, index, original, ablated = rows[0]
    assert effects[unit].sum() == effects.sum(axis=1).max()
    assert np.logical_xor(original, ablated).sum() == effects[unit, index]

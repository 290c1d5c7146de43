"""Tests of keras_vaegan.augment: training-time photo faults, repeatable from a seed."""

import glob
import os

import numpy as np
import tensorflow as tf

from keras_vaegan import augment, data

IKEA_PHOTOS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "ikea-sample", "Images")


def _real_photo(image_size=64):
    path = sorted(glob.glob(os.path.join(IKEA_PHOTOS, "*.jpg")))[0]
    with open(path, "rb") as handle:
        return data.decode_image(handle.read(), image_size)


def _seed(value):
    return tf.constant([7, value], tf.int64)


def test_augmented_photo_is_a_picture_of_the_same_size():
    photo = _real_photo()
    for value in range(10):
        out = augment.augment_photo(photo, _seed(value)).numpy()
        assert out.shape == photo.shape and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_equal_seeds_give_equal_pictures_other_seeds_other_pictures():
    photo = _real_photo()
    first = augment.augment_photo(photo, _seed(1)).numpy()
    np.testing.assert_array_equal(first, augment.augment_photo(photo, _seed(1)).numpy())
    assert np.abs(first - augment.augment_photo(photo, _seed(2)).numpy()).mean() > 0.01
    assert np.abs(first - photo.numpy()).mean() > 0.01


def test_reframing_zooms_in_and_out_with_black_outside_the_picture():
    white = tf.ones([32, 32, 3])
    framed = [augment.reframe(white, _seed(value)).numpy() for value in range(40)]
    corners = [frame[[0, 0, -1, -1], [0, -1, 0, -1]].min() for frame in framed]
    assert min(corners) == 0.0  # some crops reach past the picture: padded black
    assert max(corners) == 1.0  # others stay inside it: zoomed in, no padding


def test_blur_keeps_flat_areas_and_softens_edges():
    flat = tf.fill([16, 16, 3], 0.4)
    np.testing.assert_allclose(augment.blur(flat, 1.0).numpy(), 0.4, atol=1e-6)
    checks = np.indices((16, 16)).sum(axis=0) % 2
    board = tf.constant(np.repeat(checks[..., None], 3, axis=2), tf.float32)
    assert augment.blur(board, 1.0).numpy().std() < 0.5 * board.numpy().std()
    np.testing.assert_allclose(augment.blur(board, 0.05).numpy(), board.numpy(), atol=1e-4)

"""Tests of vaegan_utils.render: voxel pictures, grids of them and PNG files."""

import gzip
import os

import numpy as np
import pytest
from PIL import Image

from vaegan_utils import render

CHAIRS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "modelnet10-chair-32.npy.gz")
WHITE = (255, 255, 255)


def _object_mask(image, background=WHITE):
    return np.any(image != np.asarray(background, np.uint8), axis=-1)


def _centroid(mask):
    rows, cols = np.nonzero(mask)
    return rows.mean(), cols.mean()


def _box(resolution, x=slice(None), y=slice(None), z=slice(None)):
    grid = np.zeros((resolution,) * 3, bool)
    grid[x, y, z] = True
    return grid


@pytest.mark.parametrize("shape", [(16, 16, 16), (16, 16, 16, 1)])
def test_render_shape_and_dtype(shape):
    image = render.render_voxels(np.ones(shape, np.float32), size=40)
    assert image.shape == (40, 40, 3) and image.dtype == np.uint8


def test_empty_grid_is_background():
    image = render.render_voxels(np.zeros((16, 16, 16)), size=32, background=(10, 20, 30))
    assert (image == np.array([10, 20, 30], np.uint8)).all()


def test_full_grid_renders_a_shaded_cube():
    image = render.render_voxels(np.ones((32, 32, 32)), size=64)
    mask = _object_mask(image)
    assert mask[32, 32] and not mask[0, 0] and not mask[-1, -1]
    assert (mask == mask[:, ::-1]).mean() > 0.97  # at azimuth 45 the silhouette is symmetric
    top, left, right = image[12, 32].astype(int), image[40, 20].astype(int), image[40, 44].astype(int)
    assert top.sum() > left.sum() > right.sum()  # three faces, three shades, the top brightest


def test_axis_convention_z_up_x_right_front_is_low_y():
    view = dict(size=64, azimuth=0.0, elevation=30.0)
    high = _centroid(_object_mask(render.render_voxels(_box(16, z=slice(12, 16)), **view)))
    low = _centroid(_object_mask(render.render_voxels(_box(16, z=slice(0, 4)), **view)))
    assert high[0] < low[0]  # +z is up in the picture
    right = _centroid(_object_mask(render.render_voxels(_box(16, x=slice(12, 16)), **view)))
    assert right[1] > 40  # +x is to the right seen from the front
    front = _centroid(_object_mask(render.render_voxels(_box(16, y=slice(0, 2), z=slice(0, 2)), **view)))
    back = _centroid(_object_mask(render.render_voxels(_box(16, y=slice(14, 16), z=slice(0, 2)), **view)))
    assert front[0] > back[0] + 5  # the camera looks down at the front (-y) side


def test_threshold_and_rgba():
    grid = np.full((8, 8, 8), 0.4)
    assert not _object_mask(render.render_voxels(grid, size=16)).any()
    assert _object_mask(render.render_voxels(grid, size=16, threshold=0.3)).any()
    rgba = render.render_rgba(np.ones((8, 8, 8)), size=32)
    assert rgba.shape == (32, 32, 4) and rgba[0, 0, 3] == 0 and rgba[16, 16, 3] == 255


def test_pinhole_camera_shows_near_things_bigger():
    # equal cubes, the left one at the front (low y), the right one at the back, seen from the front
    front_left = _box(16, x=slice(0, 4), y=slice(0, 4), z=slice(0, 4))
    cubes = front_left | _box(16, x=slice(12, 16), y=slice(12, 16), z=slice(0, 4))
    view = dict(size=64, azimuth=0.0, elevation=30.0)

    def near_over_far_width(distance):
        columns = np.nonzero((render.render_rgba(cubes, distance=distance, **view)[..., 3] > 0).any(axis=0))[0]
        gaps = np.nonzero(np.diff(columns) > 1)[0]
        assert len(gaps) == 1  # two separate blobs
        left, right = columns[: gaps[0] + 1], columns[gaps[0] + 1 :]
        return np.ptp(left) / np.ptp(right)

    assert near_over_far_width(None) == pytest.approx(1.0, abs=0.1)
    assert near_over_far_width(1.2) > 1.3
    assert near_over_far_width(1.2) > near_over_far_width(5.0) > 1.0
    with pytest.raises(ValueError, match="camera distance"):
        render.render_rgba(cubes, distance=0.5)


def test_rejects_non_cubic_grids():
    with pytest.raises(ValueError, match="cubic"):
        render.render_voxels(np.ones((8, 8, 4)))


def test_render_draws_a_dense_random_grid():
    grid = np.random.default_rng(0).random((64, 64, 64)) > 0.7  # about the worst case: many faces
    image = render.render_voxels(grid)
    assert image.shape == (128, 128, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 3  # shaded faces, not a blank tile


def test_render_grid_layout_and_labels():
    grids = [_box(8, z=slice(0, 4))] * 5
    plain = render.render_grid(grids, columns=3, cell_size=32)
    assert plain.shape == (2 * 33 - 1, 3 * 33 - 1, 3) and plain.dtype == np.uint8
    assert (plain[32, :] == render.SEPARATOR).all() and (plain[:, 32] == render.SEPARATOR).all()
    labelled = render.render_grid(grids, columns=3, cell_size=32, labels=["a", "b", "c", "d", "e"])
    assert (labelled[:12, 33:45] != plain[:12, 33:45]).any()


def test_side_by_side_accepts_float_and_uint8_photos():
    red = np.zeros((2, 20, 30, 3), np.float32)
    red[..., 0] = 1.0
    grids = np.ones((2, 8, 8, 8, 1))
    for photos in (red, (red * 255).astype(np.uint8)):
        image = render.side_by_side(photos, grids, cell_size=24)
        assert image.shape == (2 * 25 - 1, 2 * 25 - 1, 3)
        assert tuple(image[12, 12]) == (255, 0, 0)  # the photo fills the left cell's middle
        assert _object_mask(image[:24, 25:]).any()


def test_save_png_round_trip(tmp_path):
    path = tmp_path / "picture.png"
    path.write_bytes(b"old")
    image = render.render_voxels(np.ones((8, 8, 8)), size=20)
    render.save_png(image, str(path))
    assert (np.asarray(Image.open(path)) == image).all()
    assert os.listdir(tmp_path) == ["picture.png"]


def test_modelnet_chairs_render():
    with gzip.open(CHAIRS) as file:
        chairs = np.load(file)[:3, 0]
    assert not _object_mask(render.render_voxels(chairs[0])).any()  # entry 0 is empty
    mask = _object_mask(render.render_voxels(chairs[1]))
    assert mask.mean() > 0.05
    sheet = render.render_grid(chairs, cell_size=64)
    assert sheet.shape == (2 * 65 - 1, 2 * 65 - 1, 3)

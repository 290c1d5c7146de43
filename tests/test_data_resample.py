"""Resampling voxel grids: occupancy and centre kept on the real IKEA grids, thin parts kept when shrinking."""

import glob
import os

import numpy as np
import pytest

from vaegan_utils import readers
from vaegan_utils.resample import pad_centred, resample, stretch, to_resolution

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IKEA_GRIDS = sorted(glob.glob(os.path.join(ROOT, "..", "shared", "data", "ikea-sample", "Voxels", "*.mat")))


def centre(grid):
    """Centre of the occupied voxels' bounding box as a fraction of the cube edge."""
    cells = np.argwhere(grid)
    return (cells.min(axis=0) + cells.max(axis=0) + 1) / 2 / grid.shape[0]


@pytest.mark.parametrize("resolution", [32, 64])
def test_upsampling_the_ikea_grids_keeps_occupancy_and_centre(resolution):
    assert len(IKEA_GRIDS) == 225
    ratios = []
    for path in IKEA_GRIDS:
        grid = readers.read_mat_voxels(path, "grid") > 0
        bigger = resample(grid, resolution)
        assert bigger.shape == (resolution,) * 3 and bigger.dtype == bool
        ratios.append(bigger.mean() / grid.mean())
        np.testing.assert_allclose(centre(bigger), centre(grid), atol=1 / resolution)
    assert abs(np.mean(ratios) - 1) < 0.03


def extents(grid):
    cells = np.argwhere(grid)
    return cells.max(axis=0) - cells.min(axis=0) + 1


def test_stretching_refits_the_longest_side_to_the_grid_and_centres_the_shape():
    grid = np.zeros((20, 20, 20), bool)
    grid[0:20, 5:15, 6:14] = True  # 20 x 10 x 8, centred like the IKEA models
    np.testing.assert_array_equal(stretch(grid, (1, 1, 1), 32), resample(grid, 32))
    wider = stretch(grid, (0.8, 1.2, 1.0), 32)  # 16 x 12 x 8 voxels: x still the longest, spans 32 cells
    np.testing.assert_array_equal(extents(wider), [32, 24, 16])
    np.testing.assert_allclose(centre(wider), 0.5, atol=1 / 32)
    taller = stretch(grid, (1.0, 1.0, 4.0), 32)  # 20 x 10 x 32: z the longest now
    np.testing.assert_array_equal(extents(taller), [20, 10, 32])
    assert not stretch(np.zeros((20, 20, 20), bool), (1.1, 1, 1), 32).any()


def test_stretching_the_ikea_grids_by_up_to_a_fifth_keeps_every_part():
    """Every connected part of a real model survives the largest stretch ikea_renders allows."""
    from scipy import ndimage

    for path in IKEA_GRIDS[::9]:
        grid = readers.read_mat_voxels(path, "grid") > 0
        for factors in ((1.2, 0.8, 0.8), (0.8, 1.2, 0.8), (0.8, 0.8, 1.2)):
            stretched = stretch(grid, factors, 32)
            assert ndimage.label(stretched)[1] == ndimage.label(grid)[1], (path, factors)
            assert extents(stretched).max() == 32


def test_integer_upsampling_is_exact_blocks():
    grid = np.random.default_rng(0).random((16, 16, 16)) > 0.7
    np.testing.assert_array_equal(resample(grid, 32), grid.repeat(2, 0).repeat(2, 1).repeat(2, 2))
    np.testing.assert_array_equal(resample(grid, 16), grid)


def test_downsampling_keeps_thin_parts():
    grid = np.zeros((128, 128, 128), bool)
    grid[64, 64, :] = True  # a one-voxel-thin leg
    small = resample(grid, 32)
    assert small[16, 16].all() and small.sum() == 32
    odd = resample(np.ones((50, 50, 50), bool), 32)
    assert odd.all()


def test_30_cubed_is_padded_one_voxel_each_side():
    grid = np.ones((30, 30, 30), np.uint8)
    padded = to_resolution(grid, 32)
    assert padded.sum() == 30**3 and not padded[0].any() and not padded[-1].any() and padded[1:31, 1:31, 1:31].all()
    assert to_resolution(grid, 64).sum() == 60**3
    with pytest.raises(ValueError, match="cannot pad"):
        pad_centred(grid, 20)

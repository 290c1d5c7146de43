"""Voxel grids to another resolution: nearest-neighbour up, occupied-if-any down, centred padding, stretching."""

import numpy as np


def _nearest_indices(source, target):
    """For each of `target` cells, the source cell whose centre is nearest (symmetric about the middle)."""
    return np.minimum(((np.arange(target) + 0.5) * source / target).astype(int), source - 1)


def _upsample(grid, target):
    index = _nearest_indices(grid.shape[0], target)
    return grid[np.ix_(index, index, index)]


def _block_any(grid, factor):
    size = grid.shape[0] // factor
    return grid.reshape(size, factor, size, factor, size, factor).any(axis=(1, 3, 5))


def resample(grid, resolution):
    """A cubic occupancy grid at `resolution`^3 (bool).

    Upsampling copies each voxel to the cells whose centres fall inside it, so
    the occupied fraction and the centre of the shape stay as they were.
    Downsampling marks a cell occupied when any voxel it covers is, so thin
    parts (chair legs) survive; a non-integer factor first upsamples to the
    next multiple of `resolution`.
    """
    grid = np.asarray(grid) > 0.5
    size = grid.shape[0]
    if size == resolution:
        return grid
    if size < resolution:
        return _upsample(grid, resolution)
    factor = -(-size // resolution)
    if size != factor * resolution:
        grid = _upsample(grid, factor * resolution)
    return _block_any(grid, factor)


def pad_centred(grid, resolution):
    """Pads a smaller cubic grid with empty cells equally on every side (30^3 -> 32^3: one each side)."""
    grid = np.asarray(grid)
    extra = resolution - grid.shape[0]
    if extra < 0:
        raise ValueError(f"cannot pad a {grid.shape[0]}^3 grid to {resolution}^3")
    before = extra // 2
    return np.pad(grid, [(before, extra - before)] * 3)


def to_resolution(grid, resolution):
    """Any cubic grid at `resolution`^3; 30^3 grids (3D ShapeNets) are first padded to 32^3, one voxel
    each side, as the paper's ports do."""
    grid = np.asarray(grid)
    if grid.ndim == 3 and grid.shape[0] == 30:
        grid = pad_centred(grid, 32)
    return resample(grid, resolution)


def stretch(grid, factors, resolution):
    """The shape of `grid` stretched by `factors` along (x, y, z), refitted as the IKEA models are: its
    longest side spans a `resolution`^3 grid and it is centred on every axis (bool).

    Each cell copies the source voxel its centre falls in (nearest neighbour, as `resample` upsamples);
    a grid with nothing occupied comes back empty.
    """
    grid = np.asarray(grid) > 0.5
    occupied = np.argwhere(grid)
    if not len(occupied):
        return np.zeros((resolution,) * 3, bool)
    low, high = occupied.min(axis=0), occupied.max(axis=0) + 1
    factors = np.asarray(factors, np.float64)
    cells_per_voxel = resolution / ((high - low) * factors).max() * factors
    offsets = np.arange(resolution) + 0.5 - resolution / 2
    indices = [np.floor((low[a] + high[a]) / 2 + offsets / cells_per_voxel[a]).astype(int) for a in range(3)]
    padded = np.pad(grid, 1)  # cells whose centre falls outside the grid pick the empty border
    return padded[np.ix_(*[np.clip(index + 1, 0, size + 1) for index, size in zip(indices, grid.shape)])]

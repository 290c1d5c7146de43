"""Pairwise distances between voxel grids: 1 - IoU of the occupied voxels, and Chamfer on surface points.

Both are symmetric, zero between identical grids and defined for empty grids
(so no metric built on them is ever NaN):

- IoU distance: 1 - |A and B| / |A or B| of the grids binarized at a
  threshold. Two empty grids are at distance 0 (they are identical); an empty
  and a non-empty grid at 1, as for any two disjoint shapes.
- Chamfer distance (as in Achlioptas et al. 2018): mean squared distance from
  each point of A to its nearest point of B, plus the same from B to A. The
  points are centres of surface voxels (occupied voxels with an empty
  6-neighbour, the grid's outside counting as empty), divided by the
  resolution so every grid lies in the unit cube and numbers compare across
  32^3 and 64^3. Each grid gets a fixed number of them (`count`), drawn from a generator
  seeded by the seed and the grid's own bits: a grid always gets the same
  points, so identical grids are at distance 0. Two empty grids are at 0, an
  empty and a non-empty grid at EMPTY_CHAMFER, more than between any two
  non-empty grids (each mean is below 3, the squared diagonal of the cube).
"""

import hashlib

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

EMPTY_CHAMFER = 6.0
_FACE_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)
_IOU_CHUNK_VOXELS = 1 << 25  # floats per block of the flattened grids in one matrix product


def occupancy(grids, threshold=0.5, name="grids"):
    """(N, R, R, R) or (N, R, R, R, 1) values -> bool (N, R, R, R) of voxels above `threshold`."""
    grids = np.asarray(grids)
    if grids.ndim == 5 and grids.shape[-1] == 1:
        grids = grids[..., 0]
    if grids.ndim != 4 or len(set(grids.shape[1:])) != 1:
        raise ValueError(f"{name}: expected cubic grids (N, R, R, R[, 1]), got shape {grids.shape}")
    if not len(grids):
        raise ValueError(f"{name}: no grids")
    return grids > threshold


def iou_distances(a, b):
    """(N, M) float64 1 - IoU between boolean grids a (N, R, R, R) and b (M, R, R, R)."""
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"grids of different shapes: {a.shape[1:]} and {b.shape[1:]}")
    flat_a = a.reshape(len(a), -1).astype(np.float32)
    sizes_a = flat_a.sum(1, dtype=np.float64)
    chunk = max(1, _IOU_CHUNK_VOXELS // flat_a.shape[1])
    distances = np.empty((len(a), len(b)))
    for start in range(0, len(b), chunk):
        flat_b = b[start:start + chunk].reshape(-1, flat_a.shape[1]).astype(np.float32)
        intersection = (flat_a @ flat_b.T).astype(np.float64)  # exact: counts stay below 2^24
        union = sizes_a[:, None] + flat_b.sum(1, dtype=np.float64)[None, :] - intersection
        iou = np.divide(intersection, union, out=np.ones_like(union), where=union > 0)
        distances[:, start:start + chunk] = 1.0 - iou
    return distances


def surface_voxels(grid):
    """Indices (S, 3) of the occupied voxels of a boolean grid that have an empty 6-neighbour."""
    interior = ndimage.binary_erosion(grid, structure=_FACE_NEIGHBOURS, border_value=0)
    return np.argwhere(grid & ~interior)


def _surface_sample(grid, count, seed):
    """Indices (count, 3) of surface voxels drawn for a boolean grid; (0, 3) if it is empty."""
    voxels = surface_voxels(grid)
    if not len(voxels):
        return voxels
    digest = hashlib.blake2b(np.packbits(grid).tobytes(), digest_size=8).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest, "little")])
    if len(voxels) >= count:
        return voxels[rng.choice(len(voxels), count, replace=False)]
    return np.concatenate([voxels, voxels[rng.choice(len(voxels), count - len(voxels))]])


def surface_points(grid, count, seed=0):
    """`count` surface-voxel centres (count, 3) of a boolean grid in the unit cube; (0, 3) if empty.

    Drawn without replacement when the surface has enough voxels; else every
    surface voxel once and the rest drawn again at random. The draw depends only
    on `seed` and the grid's bits.
    """
    return (_surface_sample(grid, count, seed) + 0.5) / grid.shape[0]


def chamfer_distance(points_a, points_b):
    """Chamfer distance between two point sets (P, 3) and (Q, 3): the sum of the two mean squared
    nearest-neighbour distances; 0 between two empty sets, EMPTY_CHAMFER if only one is empty."""
    if not len(points_a) or not len(points_b):
        return 0.0 if len(points_a) == len(points_b) else EMPTY_CHAMFER
    a_to_b, _ = cKDTree(points_b).query(points_a)
    b_to_a, _ = cKDTree(points_a).query(points_b)
    return float(np.mean(a_to_b ** 2) + np.mean(b_to_a ** 2))


def chamfer_distances(grids, count=512, seed=0):
    """Symmetric (K, K) Chamfer distances between boolean grids (K, R, R, R), each through its
    `count` surface points (surface_points); equal to chamfer_distance on those points.

    Points sit on voxel centres, so the squared distance from any voxel to the nearest
    point of grid j is read from one Euclidean distance transform of j's points.
    """
    resolution = grids.shape[1]
    cells = [np.ravel_multi_index(_surface_sample(grid, count, seed).T, grid.shape) for grid in grids]
    present = np.array([len(points) > 0 for points in cells], bool)
    distances = np.where(present[:, None] == present[None, :], 0.0, EMPTY_CHAMFER)
    kept = np.flatnonzero(present)
    if not len(kept):
        return distances
    queries = np.stack([cells[index] for index in kept])
    one_way = np.empty((len(kept), len(kept)))  # [i, j]: mean squared distance from i's points to j's
    for column, index in enumerate(kept):
        outside = np.ones(grids.shape[1:], bool)
        outside.flat[cells[index]] = False
        squared = (ndimage.distance_transform_edt(outside) / resolution).ravel() ** 2  # to j's nearest point
        one_way[:, column] = squared[queries].mean(axis=1)
    distances[np.ix_(kept, kept)] = one_way + one_way.T
    return distances

"""Triangle meshes to occupancy grids in the project convention (`[x, y, z]`, z up, front -y).

Up axes of the mesh sources, checked by voxelizing the real files in
../shared/data/meshes and rendering them: ModelNet OFF meshes are z up with
their fronts towards -y already; ShapeNetCore OBJ meshes are y up with their
fronts towards -z (the birdhouse's entrance hole), so `up_axis="y"` turns them
by the rotation (x, y, z) -> (-x, z, y).
"""

import numpy as np
from scipy import ndimage

UP_AXES = ("y", "z")
# Moves faces that lie exactly on a voxel boundary (such as the bounding box's
# own faces) inside, so the conservative surface test marks one layer, not two.
_SHRINK = 1 - 1e-6


def to_z_up(vertices, up_axis):
    """Vertices (V, 3) of a mesh whose up axis is `up_axis` ("y" or "z"), turned to z up, front -y."""
    vertices = np.asarray(vertices, np.float64)
    if up_axis == "z":
        return vertices
    if up_axis == "y":
        return np.stack([-vertices[:, 0], vertices[:, 2], vertices[:, 1]], axis=1)
    raise ValueError(f"up_axis must be one of {', '.join(UP_AXES)}, got {up_axis!r}")


def normalize_mesh(vertices):
    """Centres the bounding box at the origin and scales its longest edge to 1, keeping the aspect.

    The result lies in the unit cube [-0.5, 0.5]^3 and touches it on the longest axis.
    """
    vertices = np.asarray(vertices, np.float64)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    extent = (high - low).max()
    if not extent > 0:
        raise ValueError("cannot normalize a mesh whose vertices all coincide")
    return (vertices - (low + high) / 2) / extent


def surface_voxels(vertices, faces, resolution):
    """Bool (r, r, r): the voxels of the cube [-0.5, 0.5]^3 that the triangles touch.

    open3d's triangle-box test, so thin parts (chair legs, sheets) keep at least one voxel.
    """
    import open3d as o3d  # a large import: only when meshes are voxelized

    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(vertices, np.float64) * _SHRINK),
                                     o3d.utility.Vector3iVector(np.asarray(faces, np.int32)))
    voxels = o3d.geometry.VoxelGrid.create_from_triangle_mesh_within_bounds(
        mesh, 1.0 / resolution, np.full(3, -0.5), np.full(3, 0.5))
    grid = np.zeros((resolution,) * 3, bool)
    indices = np.array([voxel.grid_index for voxel in voxels.get_voxels()], np.int64).reshape(-1, 3)
    grid[tuple(indices.T)] = True
    return grid


def voxelize_mesh(vertices, faces, resolution, up_axis="z"):
    """A solid occupancy grid (r, r, r) bool of a mesh, `[x, y, z]`, z up, front -y.

    The mesh is turned to z up (see `to_z_up`), centred and scaled so its
    longest edge spans the grid (`normalize_mesh`); the voxels its surface
    touches are marked, and the cavities they enclose filled
    (scipy.ndimage.binary_fill_holes). Open meshes stay hollow where they
    do not enclose space.
    """
    if resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    vertices = normalize_mesh(to_z_up(vertices, up_axis))
    return ndimage.binary_fill_holes(surface_voxels(vertices, faces, resolution))

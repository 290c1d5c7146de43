"""Occupancy grids as triangle meshes (marching cubes) and PLY files, without TensorFlow.

Vertices are in voxel units of the grid's [x, y, z] axes (z up, front towards -y):
voxel (i, j, k) fills the cube [i, i + 1] x [j, j + 1] x [k, k + 1], so a grid of
edge R spans [0, R]^3. Triangles are wound counter-clockwise seen from outside,
and the normals point outwards.
"""

import numpy as np
from skimage.measure import marching_cubes

from vaegan_utils.files import write_bytes_atomically


def occupancy_mesh(grid, level=0.5):
    """(vertices (V, 3) float32, faces (F, 3) int32) of the surface at `level`; empty arrays when nothing exceeds it.

    The grid is padded with one empty voxel on every side so shapes touching its
    border are closed. scikit-image winds the faces of an occupancy grid inwards
    (its values rise towards the inside), so they are flipped.
    """
    grid = np.asarray(grid, np.float32)
    if grid.ndim == 4 and grid.shape[-1] == 1:
        grid = grid[..., 0]
    if grid.ndim != 3:
        raise ValueError(f"expected a grid (X, Y, Z[, 1]), got shape {grid.shape}")
    if not (grid > level).any():
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    vertices, faces, _, _ = marching_cubes(np.pad(grid, 1), level=level)
    vertices = vertices - 0.5  # padded index -> voxel units (centre of voxel i at i + 0.5)
    return vertices.astype(np.float32), faces[:, ::-1].astype(np.int32)


def vertex_normals(vertices, faces):
    """Unit normals (V, 3) from the area-weighted normals of the faces around each vertex."""
    triangles = vertices[faces].astype(np.float64)
    face_normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normals = np.zeros(vertices.shape, np.float64)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.maximum(length, 1e-12)).astype(np.float32)


def signed_volume(vertices, faces):
    """Volume enclosed by a closed mesh; positive when its faces are wound outwards."""
    triangles = vertices[faces].astype(np.float64)
    return float(np.einsum("ij,ij->i", triangles[:, 0], np.cross(triangles[:, 1], triangles[:, 2])).sum() / 6)


def ply_bytes(vertices, faces):
    """A binary little-endian PLY with vertex positions, outward normals and triangles."""
    normals = vertex_normals(vertices, faces) if len(faces) else np.zeros_like(vertices)
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment keras-vaegan occupancy mesh, voxel units, z up\n"
        f"element vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    vertex_data = np.concatenate([vertices, normals], axis=1).astype("<f4")
    face_data = np.zeros(len(faces), dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    face_data["count"], face_data["indices"] = 3, faces
    return header.encode("ascii") + vertex_data.tobytes() + face_data.tobytes()


def write_ply(path, vertices, faces):
    """Writes the mesh to `path` atomically (temporary file beside it, then rename)."""
    write_bytes_atomically(path, ply_bytes(vertices, faces))

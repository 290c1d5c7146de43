"""Triangle meshes to occupancy grids in the project convention (`[x, y, z]`, z up, front -y),
and to photos from random viewpoints (open3d's headless offscreen renderer).

Up axes of the mesh sources, checked by voxelizing the real files in
../shared/data/meshes and rendering them: ModelNet OFF meshes are z up with
their fronts towards -y already; ShapeNetCore OBJ meshes are y up with their
fronts towards -z (the birdhouse's entrance hole), so `up_axis="y"` turns them
by the rotation (x, y, z) -> (-x, z, y).
"""

import os

import numpy as np
from PIL import Image
from scipy import ndimage

from data_tools import offscreen
from vaegan_utils import render

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


# ---------------------------------------------------------------- photos of meshes

PLAIN_BACKGROUND = (240, 240, 240)
MESH_COLORS = (
    (160, 120, 70), (110, 75, 45), (215, 185, 140), (235, 235, 228), (45, 45, 48),
    (125, 125, 130), (150, 50, 45), (60, 85, 140), (85, 115, 75), (190, 160, 110),
)
ELEVATION_RANGE = (5.0, 40.0)
FIELD_OF_VIEW = 30.0  # vertical, degrees
SUPERSAMPLE = 2
_AMBIENT = 0.35


def _camera(azimuth, elevation, distance):
    """Unit vectors towards the camera and to screen right, and the eye position.

    Azimuth 0 looks at the front (from -y), as vaegan_utils.render does.
    """
    az, el = np.radians(azimuth), np.radians(elevation)
    toward = np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])
    right = np.array([np.cos(az), np.sin(az), 0.0])
    return toward, right, distance * toward


def _shaded_colors(corners, color, toward, right):
    """Vertex colors (3F, 3) in [0, 1] of separate triangles (F, 3, 3): flat Lambert shading, baked in.

    Two-sided: each face is lit on the side the camera sees. The light comes
    from above and behind the viewer's left shoulder.
    """
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    normals *= np.where(normals @ toward < 0, -1.0, 1.0)[:, None]
    light = 0.6 * toward - 0.5 * right + np.array([0.0, 0.0, 1.0])
    light /= np.linalg.norm(light)
    shade = _AMBIENT + (1 - _AMBIENT) * np.clip(normals @ light, 0.0, 1.0)
    # At least 2/255 in every channel: pure black marks the background (unlit output is linear, 0.5 -> 128).
    return np.repeat(np.maximum(shade[:, None] * (np.asarray(color) / 255.0), 2 / 255), 3, axis=0)


def _background(path, rng, size):
    """A random square crop (half to all of the shorter side) of an image, resized to size^2, float."""
    from vaegan_utils.readers import read_image

    image = read_image(path)
    height, width = image.shape[:2]
    side = max(1, int(round(rng.uniform(0.5, 1.0) * min(height, width))))
    top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
    crop = Image.fromarray(image[top : top + side, left : left + side])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), np.float64)


def render_views(vertices, faces, *, views, image_size, seed, backgrounds=None, up_axis="z", color=None):
    """`views` photos (image_size, image_size, 3) uint8 of a mesh from random viewpoints.

    The mesh is turned to z up and normalized as in voxelize_mesh. Viewpoints
    (azimuth uniform in [0, 360), elevation in ELEVATION_RANGE degrees), the
    material color (one of MESH_COLORS unless `color` is given) and the
    background crops depend only on `seed`: the same arguments give the same
    bytes. The camera (perspective, FIELD_OF_VIEW) is framed on the mesh's
    bounding sphere. Rendered with open3d's headless OffscreenRenderer, in a
    child process with a time limit (data_tools.offscreen), at SUPERSAMPLE
    times the size, flat-shaded, then box-filtered and composited over a
    random square crop of a random image from `backgrounds` (paths, read with
    readers.read_image), or over PLAIN_BACKGROUND when None.
    """
    if views < 1 or image_size < 8:
        raise ValueError(f"need views >= 1 and image_size >= 8, got {views} and {image_size}")
    if backgrounds is not None and not len(backgrounds):
        raise ValueError("backgrounds is an empty list (give None for a plain background)")
    corners = normalize_mesh(to_z_up(vertices, up_axis))[np.asarray(faces)]
    distance = np.linalg.norm(corners.reshape(-1, 3), axis=1).max() / np.sin(np.radians(FIELD_OF_VIEW / 2))
    rng = np.random.default_rng(seed)
    size = image_size * SUPERSAMPLE
    blocks = (image_size, SUPERSAMPLE, image_size, SUPERSAMPLE)
    photos = []
    for _ in range(views):
        azimuth, elevation = rng.uniform(0, 360), rng.uniform(*ELEVATION_RANGE)
        paint = color if color is not None else MESH_COLORS[rng.integers(len(MESH_COLORS))]
        toward, right, eye = _camera(azimuth, elevation, distance)
        pixels = offscreen.frame(corners.reshape(-1, 3), _shaded_colors(corners, paint, toward, right), size, eye,
                                 (0, 0, 1), FIELD_OF_VIEW)
        mask = pixels.max(axis=-1) > 0
        premultiplied = (pixels * mask[..., None]).reshape(blocks + (3,)).mean(axis=(1, 3))
        coverage = mask.reshape(blocks).mean(axis=(1, 3))[..., None]
        if backgrounds is None:
            background = np.asarray(PLAIN_BACKGROUND, np.float64)
        else:
            background = _background(backgrounds[rng.integers(len(backgrounds))], rng, image_size)
        photo = premultiplied + (1 - coverage) * background
        photos.append(render.to_bytes(photo))
    return photos

"""Generated shapes as TensorBoard meshes (`tensorboard.plugins.mesh`): one scene per tag.

A scene lays its cells out like the PNG grids, `columns` to a row and rows going down,
facing TensorBoard's first camera (which looks at the front), each on a grey tile: shapes as
marching-cubes surfaces (`vaegan_utils.mesh.occupancy_mesh`, the one mesh implementation of
the project) and photos as upright boards of coloured pixels facing the viewer, so a
3D-VAE-GAN's photos stand beside their reconstructions. An empty grid leaves its
tile bare. Grids are [x, y, z] with z up; TensorBoard's viewer has y up, so scenes
are written turned into its axes (x, z, -y).
"""

import numpy as np
from PIL import Image
from tensorboard.plugins.mesh import summary_v2 as mesh_summary

from vaegan_utils.mesh import occupancy_mesh

SHAPE_COLOR = (150, 90, 210)
TILE_COLOR = (200, 200, 200)
GAP = 0.25  # space between cells, as a fraction of the grid edge
PHOTO_PIXELS = 32  # photos are shrunk to this many pixels per edge: one quad each


def shape_cell(grid):
    """(vertices, faces, colors) of one occupancy grid's surface, in voxel units."""
    vertices, faces = occupancy_mesh(grid)
    return vertices, faces, np.tile(np.array(SHAPE_COLOR, np.uint8), (len(vertices), 1))


def photo_cell(image, resolution):
    """(vertices, faces, colors) of a photo (H, W, 3) in [0, 1] as a board of one quad per
    pixel, standing in the middle of a `resolution` cell and facing -y (the front)."""
    pixels = Image.fromarray(np.clip(np.asarray(image) * 255, 0, 255).astype(np.uint8))
    pixels = np.asarray(pixels.resize((PHOTO_PIXELS, PHOTO_PIXELS), Image.Resampling.BILINEAR))
    size = resolution / PHOTO_PIXELS
    rows, columns = np.meshgrid(np.arange(PHOTO_PIXELS), np.arange(PHOTO_PIXELS), indexing="ij")
    x0, z1 = columns.ravel() * size, resolution - rows.ravel() * size  # image row 0 is the top
    corners = [(x0, z1 - size), (x0 + size, z1 - size), (x0 + size, z1), (x0, z1)]
    vertices = np.stack(
        [np.stack([x, np.full_like(x, resolution / 2), z], axis=-1) for x, z in corners], axis=1
    ).reshape(-1, 3)
    first = np.arange(PHOTO_PIXELS * PHOTO_PIXELS)[:, None] * 4
    faces = np.concatenate([first + [0, 1, 2], first + [0, 2, 3]])  # wound so the normal is -y
    colors = np.repeat(pixels.reshape(-1, 3), 4, axis=0)
    return vertices.astype(np.float32), faces.astype(np.int32), colors.astype(np.uint8)


def _tile(resolution):
    vertices = np.array([[0, 0, 0], [resolution, 0, 0], [resolution, resolution, 0], [0, resolution, 0]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    return vertices, faces, np.tile(np.array(TILE_COLOR, np.uint8), (4, 1))


def layout(cells, resolution, columns):
    """One (vertices, faces, colors) scene from cells laid out `columns` to a row, rows going down (-z)."""
    pitch = resolution * (1 + GAP)
    parts, offset = [], 0
    for index, cell in enumerate(cells):
        row, column = divmod(index, columns)
        shift = np.array([column * pitch, 0, -row * pitch], np.float32)
        for vertices, faces, colors in (_tile(resolution), cell):
            parts.append((vertices + shift, faces + offset, colors))
            offset += len(vertices)
    vertices, faces, colors = (np.concatenate([part[i] for part in parts]) for i in range(3))
    return vertices, faces, colors


def to_y_up(vertices):
    """[x, y, z] with z up -> TensorBoard's y-up axes, handedness kept: (x, z, -y)."""
    return np.stack([vertices[:, 0], vertices[:, 2], -vertices[:, 1]], axis=-1)


def write_scene(name, cells, resolution, columns, step):
    """Writes one mesh summary `name` at `step` to the default summary writer."""
    vertices, faces, colors = layout(cells, resolution, columns)
    mesh_summary.mesh(name, to_y_up(vertices)[np.newaxis], faces=faces[np.newaxis], colors=colors[np.newaxis], step=step)

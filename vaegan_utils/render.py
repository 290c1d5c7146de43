"""Pictures of voxel grids with numpy and Pillow: shaded cubes, grids of them, PNG files.

Axis convention: a grid is indexed [x, y, z] with z (axis 2) up and index 0 on
the floor; the front of an object faces -y (low y). This is the layout of the
ModelNet voxelizations in ../shared/data and of data_tools.shapes. Azimuth 0
looks at the front; positive azimuth moves the camera towards +x; elevation
raises it. The camera is orthographic and framed on the whole grid cube, so
renders of one resolution share one scale; with `distance` it is a pinhole
camera that far from the grid's centre (in grid edges), aimed at the centre
and framed on the object, as in a photo.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vaegan_utils.files import write_atomically

DEFAULT_COLOR = (96, 140, 200)
SEPARATOR = (200, 200, 200)
SUPERSAMPLE = 2
_DEPTH_LEVELS = 1 << 20
_NORMALS = np.concatenate([np.eye(3, dtype=int), -np.eye(3, dtype=int)])
_UNIT_CUBE_CORNERS = np.array(np.meshgrid([0, 1], [0, 1], [0, 1])).reshape(3, -1).T


def to_bytes(pixels):
    """Float pixels in [0, 255] rounded to uint8 (out-of-range values clipped)."""
    return np.clip(np.asarray(pixels) + 0.5, 0, 255).astype(np.uint8)


def _occupancy(grid, threshold):
    """(R, R, R) or (R, R, R, 1) values -> bool (R, R, R)."""
    grid = np.asarray(grid)
    if grid.ndim == 4 and grid.shape[-1] == 1:
        grid = grid[..., 0]
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise ValueError(f"expected a cubic grid (R, R, R[, 1]), got shape {grid.shape}")
    return grid > threshold


def _camera(azimuth, elevation):
    """Unit vectors (towards camera, screen right, screen up) in grid coordinates."""
    az, el = np.radians(azimuth), np.radians(elevation)
    toward = np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])
    right = np.array([np.cos(az), np.sin(az), 0.0])
    return toward, right, np.cross(toward, right)


def _light(toward, right):
    """A light from above and from behind the viewer's left shoulder."""
    light = 0.6 * toward - 0.5 * right + np.array([0.0, 0.0, 1.0])
    return light / np.linalg.norm(light)


def _visible_faces(occupied, normal):
    """Centres of the voxel faces with outward `normal` that border empty space."""
    padded = np.pad(occupied, 1)
    shifted = np.roll(padded, -normal, axis=(0, 1, 2))[1:-1, 1:-1, 1:-1]
    cells = np.argwhere(occupied & ~shifted)
    return cells + 0.5 + 0.5 * normal


def _face_samples(normal, count):
    """Offsets (count^2, 3) covering a unit face with the given normal."""
    tangents = np.eye(3)[normal == 0]
    steps = (np.arange(count) + 0.5) / count - 0.5
    a, b = np.meshgrid(steps, steps)
    return a.reshape(-1, 1) * tangents[0] + b.reshape(-1, 1) * tangents[1]


def _surface(occupied, axes, light, samples):
    """Camera-space samples (M, 3) of the camera-facing voxel faces and their shade bytes (M,).

    `axes` holds the screen right, screen up and towards-camera unit vectors as columns.
    """
    half = occupied.shape[0] / 2
    points, shades = [], []
    for normal in _NORMALS:
        if normal @ axes[:, 2] <= 1e-9:
            continue
        centres = (_visible_faces(occupied, normal) - half) @ axes
        offsets = _face_samples(normal, samples) @ axes
        points.append((centres[:, None, :] + offsets).reshape(-1, 3))
        shades.append(np.full(len(points[-1]), round(255 * (0.5 + 0.5 * max(normal @ light, 0.0)))))
    return np.concatenate(points), np.concatenate(shades)


def _shade(occupied, size, azimuth, elevation, distance=None):
    """Shade in [0, 1] of every pixel of a (size * SUPERSAMPLE)^2 z-buffer; 0 where empty."""
    half = occupied.shape[0] / 2
    toward, right, up = _camera(azimuth, elevation)
    axes = np.stack([right, up, toward], 1)
    pixels = size * SUPERSAMPLE
    project = _projection(distance, 2 * half)
    frame = (_framed_corners(occupied, distance) - half) @ axes
    scale = 0.95 * pixels / (2 * np.abs(project(frame)).max())
    magnification = project(np.array([[1.0, 0.0, frame[:, 2].max()]]))[0, 0]  # at the nearest corner
    points, shades = _surface(occupied, axes, _light(toward, right), int(np.ceil(scale * magnification / 0.5)))
    screen = project(points) * scale
    column = (screen[:, 0] + pixels / 2).astype(np.int64)
    row = (pixels / 2 - screen[:, 1]).astype(np.int64)
    depth = ((points[:, 2] + 2 * half) / (4 * half + 1) * _DEPTH_LEVELS).astype(np.int64)
    zbuffer = np.full(pixels * pixels, -1, np.int64)
    np.maximum.at(zbuffer, row * pixels + column, depth << 8 | shades)  # the nearest sample wins
    shade = (zbuffer & 255) / 255 * (0.8 + 0.2 * (zbuffer >> 8) / _DEPTH_LEVELS)
    return np.where(zbuffer >= 0, shade, 0.0).reshape(pixels, pixels)


def _framed_corners(occupied, distance):
    """The corners the picture is framed on, in grid coordinates: the grid cube's for the orthographic
    camera (one scale per resolution), the occupied voxels' for a pinhole one (its cube would waste pixels)."""
    if distance is None:
        return _UNIT_CUBE_CORNERS * occupied.shape[0]
    return (np.argwhere(occupied)[:, None, :] + _UNIT_CUBE_CORNERS).reshape(-1, 3)


def _projection(distance, edge):
    """Camera-space points (N, 3) -> screen points (N, 2): orthographic, or a pinhole `distance` edges away."""
    if distance is None:
        return lambda points: points[:, :2]
    if distance <= np.sqrt(3) / 2:
        raise ValueError(f"camera distance must exceed {np.sqrt(3) / 2:.3f} grid edges (outside the grid), "
                         f"got {distance}")
    eye = distance * edge
    return lambda points: points[:, :2] * (eye / (eye - points[:, 2:3]))


def _render(grid, size, azimuth, elevation, threshold, color, distance=None):
    """Premultiplied color (size, size, 3) in [0, 255] and coverage (size, size, 1) in [0, 1]."""
    occupied = _occupancy(grid, threshold)
    if not occupied.any():
        return np.zeros((size, size, 3)), np.zeros((size, size, 1))
    shade = _shade(occupied, size, azimuth, elevation, distance)
    blocks = (size, SUPERSAMPLE, size, SUPERSAMPLE)
    coverage = (shade > 0).reshape(blocks).mean(axis=(1, 3))[..., None]
    premultiplied = shade.reshape(blocks).mean(axis=(1, 3))[..., None] * np.asarray(color, float)
    return premultiplied, coverage


def render_voxels(grid, size=128, azimuth=45.0, elevation=30.0, threshold=0.5, color=DEFAULT_COLOR,
                  background=(255, 255, 255)):
    """Shaded picture (size, size, 3) uint8 of one occupancy grid (R, R, R) or (R, R, R, 1).

    Visible voxel faces are sampled densely into a z-buffer, Lambert-shaded by a
    light from above the viewer's left shoulder and slightly darkened with
    depth; rendered at twice the size, then box-filtered down.
    """
    premultiplied, coverage = _render(grid, size, azimuth, elevation, threshold, color)
    image = premultiplied + (1 - coverage) * np.asarray(background, float)
    return to_bytes(image)


def render_rgba(grid, size=128, azimuth=45.0, elevation=30.0, threshold=0.5, color=DEFAULT_COLOR, distance=None):
    """Like render_voxels, but (size, size, 4) uint8 with coverage as alpha, for compositing.

    `distance` (grid edges from the grid's centre to the camera) switches to a
    pinhole camera, as in a photo; None keeps the orthographic one.
    """
    premultiplied, coverage = _render(grid, size, azimuth, elevation, threshold, color, distance)
    straight = premultiplied / np.maximum(coverage, 1e-6)
    return to_bytes(np.concatenate([straight, coverage * 255], axis=-1))


def _as_uint8_rgb(image):
    """Float [0, 1] or uint8 (H, W, 3) -> uint8 (H, W, 3)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return image


def photo_cell(image, cell_size):
    """A photo (float [0, 1] or uint8 RGB) scaled to fit a white square cell, keeping its aspect ratio."""
    picture = Image.fromarray(_as_uint8_rgb(image))
    ratio = cell_size / max(picture.size)
    size = (max(1, round(picture.width * ratio)), max(1, round(picture.height * ratio)))
    picture = picture.resize(size, Image.Resampling.LANCZOS)
    cell = Image.new("RGB", (cell_size, cell_size), (255, 255, 255))
    cell.paste(picture, ((cell_size - picture.width) // 2, (cell_size - picture.height) // 2))
    return np.asarray(cell)


def tile_cells(cells, columns, labels=None):
    """Equal square uint8 cells laid out in rows of `columns` with 1-pixel separators, optionally labelled."""
    cell_size = cells[0].shape[0]
    rows = -(-len(cells) // columns)
    step = cell_size + 1
    canvas = Image.new("RGB", (columns * step - 1, rows * step - 1), SEPARATOR)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, cell in enumerate(cells):
        x, y = (i % columns) * step, (i // columns) * step
        canvas.paste(Image.fromarray(cell), (x, y))
        if labels is not None and labels[i]:
            box = draw.textbbox((x + 3, y + 2), str(labels[i]), font=font)
            draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(255, 255, 255))
            draw.text((x + 3, y + 2), str(labels[i]), fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def render_grid(grids, columns=None, cell_size=128, labels=None, **view):
    """A batch (N, R, R, R[, 1]) rendered as one image of N cells, optionally labelled.

    `view` holds render_voxels keywords (azimuth, elevation, threshold, color, ...).
    """
    cells = [render_voxels(grid, size=cell_size, **view) for grid in grids]
    if not cells:
        raise ValueError("render_grid needs at least one grid")
    columns = columns or int(np.ceil(np.sqrt(len(cells))))
    return tile_cells(cells, min(columns, len(cells)), labels)


def side_by_side(images, grids, cell_size=128):
    """One row per pair: the input photo (float [0, 1] or uint8) and the rendered grid."""
    if len(images) != len(grids) or not len(grids):
        raise ValueError(f"need equal, non-zero numbers of images and grids, got {len(images)} and {len(grids)}")
    cells = []
    for image, grid in zip(images, grids):
        cells += [photo_cell(image, cell_size), render_voxels(grid, size=cell_size)]
    return tile_cells(cells, 2)


def save_png(array, path):
    """Writes a uint8 (H, W[, 3]) array as PNG atomically (temporary file, then rename)."""
    picture = Image.fromarray(np.asarray(array, np.uint8))
    write_atomically(path, lambda temporary: picture.save(temporary, format="PNG"))

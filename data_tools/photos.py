"""Photo-like pictures of voxel shapes: a furniture colour, a random view, a photo-like crop, a backdrop.

The backdrop is procedural (gradients, stripes, blobs, rings, grain, or rooms:
a wall over a floor) or, when photos are given, a random crop of one of them
(the paper composites its renders over SUN database photos). With `jitter` the
picture also gets the faults of real photos: colour casts, blur and JPEG
artefacts.
"""

import io

import numpy as np
from PIL import Image, ImageFilter

from vaegan_utils import render

FURNITURE_COLORS = (
    (160, 120, 70), (110, 75, 45), (215, 185, 140), (235, 235, 228), (45, 45, 48),
    (125, 125, 130), (150, 50, 45), (60, 85, 140), (85, 115, 75), (190, 160, 110),
)
WALL_COLORS = ((238, 236, 230), (225, 218, 200), (205, 208, 210), (235, 225, 205), (190, 200, 185), (215, 200, 190))
ELEVATIONS = (10.0, 40.0)  # degrees above the horizon
CLUTTER_ELEVATIONS = (10.0, 65.0)  # with clutter: down to the top-down views of beds in photos
TRUNCATED_SHARE, TRUNCATION = 0.35, (0.05, 0.25)  # with clutter: pictures cut into the object, and by how much
OCCLUDED_SHARE = 0.5  # with clutter: pictures with things in front of or on the object
BACKDROP_CROP_SHARE = (0.5, 1.0)  # of a backdrop photo's short side: a view of the room
TEXTURE_CROP_SHARE = (0.15, 0.6)  # with photo textures: a close view, as of upholstery, books or wood
FLOOR_COLORS = ((165, 120, 75), (195, 160, 115), (120, 85, 55), (150, 150, 150), (90, 85, 80), (215, 210, 200))


def _background(rng, size):
    """A random procedural backdrop (size, size, 3) float: gradient, stripes, blobs or rings, plus grain."""
    y, x = np.mgrid[0:1:size * 1j, 0:1:size * 1j]
    angle = rng.uniform(0, 2 * np.pi)
    along = x * np.cos(angle) + y * np.sin(angle)
    kind = rng.integers(4)
    if kind == 0:
        t = along - along.min()
    elif kind == 1:
        t = (np.sin(2 * np.pi * rng.uniform(2, 10) * along) > rng.uniform(-0.5, 0.5)).astype(float)
    elif kind == 2:
        cells = rng.random((rng.integers(3, 9),) * 2).astype(np.float32)
        t = np.asarray(Image.fromarray(cells).resize((size, size), Image.Resampling.BICUBIC))
    else:
        t = np.hypot(x - rng.random(), y - rng.random()) * rng.uniform(1, 6) % 1.0
    low, high = rng.uniform(0, 255, (2, 3))
    image = low + np.clip(t, 0, 1)[..., None] * (high - low)
    return image + rng.normal(0, rng.uniform(0, 12), image.shape)


def _room(rng, size):
    """A procedural room corner (size, size, 3) float: a lit wall over a wooden, tiled or carpeted floor, as
    behind furniture in interior photos; the horizon is anywhere from the upper third to the bottom edge."""
    y, x = np.mgrid[0:1:size * 1j, 0:1:size * 1j]
    wall = np.asarray(WALL_COLORS[rng.integers(len(WALL_COLORS))]) + rng.normal(0, 10, 3)
    light = 1 + rng.uniform(-0.15, 0.15) * (x - 0.5) + rng.uniform(-0.15, 0.1) * (y - 0.5)
    image = wall * light[..., None]
    horizon = rng.uniform(0.35, 1.0)
    floor = np.asarray(FLOOR_COLORS[rng.integers(len(FLOOR_COLORS))]) + rng.normal(0, 12, 3)
    depth = np.clip((y - horizon) / max(1 - horizon, 1e-6), 0, 1)  # 0 at the horizon, 1 at the bottom edge
    kind = rng.integers(3)
    if kind == 0:  # planks, narrowing towards the horizon
        pattern = np.sin(2 * np.pi * rng.uniform(3, 8) * (x - 0.5) / (0.3 + depth)) > rng.uniform(-0.8, 0.8)
    elif kind == 1:  # tiles
        pattern = np.sin(2 * np.pi * 5 * (x - 0.5) / (0.3 + depth)) * np.sin(2 * np.pi * 6 * np.sqrt(depth)) > 0
    else:  # carpet
        pattern = rng.random((size, size)) > 0.5
    floor_image = floor * (1 + 0.12 * (pattern - 0.5) + 0.15 * depth)[..., None]
    image = np.where((y >= horizon)[..., None], floor_image, image)
    return image + rng.normal(0, rng.uniform(0, 6), image.shape)


def _shadowed(backdrop, alpha, rng):
    """The backdrop darkened by the soft shadow the object casts just below itself."""
    mask = Image.fromarray(render.to_bytes(alpha[..., 0] * 255))
    shift = int(round(rng.uniform(0.0, 0.06) * alpha.shape[0]))
    mask = mask.transform(mask.size, Image.Transform.AFFINE, (1, 0, 0, 0, 1, -shift))
    shadow = np.asarray(mask.filter(ImageFilter.GaussianBlur(alpha.shape[0] * rng.uniform(0.03, 0.08)))) / 255.0
    return backdrop * (1 - rng.uniform(0.2, 0.5) * shadow[..., None])


def _textured(colors, rng):
    """Object colours times a random greyscale pattern (grain, stripes, blobs or rings) of random strength,
    as fabric, wood grain and the things on shelves make real furniture far from one flat colour."""
    height, width = colors.shape[:2]
    pattern = _background(rng, max(height, width)).mean(axis=-1)[:height, :width]
    pattern = (pattern - pattern.mean()) / (pattern.std() + 1e-6)
    return colors * np.clip(1 + rng.uniform(0.0, 0.25) * pattern, 0.3, 1.7)[..., None]


def _photo_textured(colors, color, texture):
    """The object's shading (`colors` over its flat `color`) laid over `texture`, an RGB picture of the same
    size: the object then shows the colours and patterns of a real photo (upholstery, books, wood) instead of
    one furniture colour, while its light and shadow still show its shape."""
    shade = colors.mean(axis=-1, keepdims=True) / max(float(np.mean(color)), 1.0)
    return texture * np.clip(shade, 0.0, 1.5)


def _texture(backdrops, rng, height, width):
    """A texture (height, width, 3) float: a close crop of a random backdrop photo, or without photos a
    procedural pattern in colour."""
    edge = max(height, width)
    if len(backdrops):
        texture = _photo_crop(backdrops[rng.integers(len(backdrops))], rng, edge, share=TEXTURE_CROP_SHARE)
    else:
        texture = np.clip(_background(rng, edge), 0, 255)
    return texture[:height, :width]


def _framed(rgba, rng, size):
    """Crops a square around the object with a random margin, like a photo crop, and resizes it."""
    rows, cols = np.nonzero(rgba[..., 3])
    half = max(np.ptp(rows), np.ptp(cols)) / 2 * rng.uniform(1.05, 1.3) + 1
    row, col = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
    box = tuple(round(v) for v in (col - half, row - half, col + half, row + half))
    return np.asarray(Image.fromarray(rgba).crop(box).resize((size, size), Image.Resampling.LANCZOS))


def _boxed(rgba, rng, size, truncate=False):
    """Crops a box around the object with a small random margin on each side, like a photo cropped to its
    annotation box, and resizes it so its long side is `size` (the short side keeps the aspect ratio).
    With `truncate`, sometimes (TRUNCATED_SHARE) one side cuts into the object instead, as the frame's edge
    cuts a bed or a sofa in a photo (never more than half of the object's height or width)."""
    rows, cols = np.nonzero(rgba[..., 3])
    object_height, object_width = np.ptp(rows) + 1, np.ptp(cols) + 1
    extent = max(object_height, object_width)
    margins = rng.uniform(0.0, 0.12, 4) * extent
    if truncate and rng.random() < TRUNCATED_SHARE:
        side = rng.integers(4)  # top, bottom, left, right
        margins[side] = -min(rng.uniform(*TRUNCATION) * extent, (object_height if side < 2 else object_width) / 2)
    top, bottom, left, right = margins
    box = (cols.min() - left, rows.min() - top, cols.max() + 1 + right, rows.max() + 1 + bottom)
    box = tuple(round(v) for v in box)
    width, height = box[2] - box[0], box[3] - box[1]
    scale = size / max(width, height)
    resized = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgba).crop(box).resize(resized, Image.Resampling.LANCZOS))


def _occluded(image, rng):
    """`image` with one to three things over it, as a table before a sofa or cushions on a bed: ellipses or
    boxes in a furniture colour with a surface pattern, each a tenth to a third of the picture across,
    mostly in its lower half."""
    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    for _ in range(rng.integers(1, 4)):
        half_width, half_height = rng.uniform(0.05, 0.17, 2) * (width, height)
        centre_x, centre_y = rng.uniform(0, width), height * rng.uniform(0.3, 1.0)
        dx, dy = (x - centre_x) / half_width, (y - centre_y) / half_height
        inside = (dx**2 + dy**2 <= 1) if rng.random() < 0.5 else (np.abs(dx) <= 1) & (np.abs(dy) <= 1)
        color = np.asarray(FURNITURE_COLORS[rng.integers(len(FURNITURE_COLORS))]) + rng.normal(0, 20, 3)
        thing = _textured(np.broadcast_to(color, image.shape).astype(np.float64), rng)
        image = np.where(inside[..., None], thing, image)
    return image


def _padded_square(image, size):
    """`image` centred on a black square of edge `size`, as photos are padded at test time."""
    height, width = image.shape[:2]
    top, left = (size - height) // 2, (size - width) // 2
    square = np.zeros((size, size, 3), image.dtype)
    square[top : top + height, left : left + width] = image
    return square


def _photo_crop(photo, rng, size, share=BACKDROP_CROP_SHARE):
    """A random square crop of a uint8 RGB photo, its edge a random `share` (low, high) of the photo's short
    side, resized to `size`."""
    height, width = photo.shape[:2]
    edge = int(min(height, width) * rng.uniform(*share))
    top, left = rng.integers(0, height - edge + 1), rng.integers(0, width - edge + 1)
    crop = Image.fromarray(photo[top : top + edge, left : left + edge])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), np.float64)


def _with_faults(image, rng):
    """A colour cast, a brightness/contrast change and sometimes blur, as in real photos."""
    image = (image - 128) * rng.uniform(0.7, 1.3) + 128 + rng.normal(0, 20) + rng.normal(0, 12, 3)
    picture = Image.fromarray(render.to_bytes(image))
    if rng.random() < 0.5:
        picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return np.asarray(picture, np.float64)


def _camera_distance(rng, distances):
    """None (orthographic) without a range; else log-uniform in `distances` (grid edges), like varied focal lengths."""
    if distances is None:
        return None
    low, high = np.log(distances)
    return float(np.exp(rng.uniform(low, high)))


def render_photo(voxels, rng, size, backdrops=(), jitter=False, camera_distances=None, boxed=False, room=False,
                 clutter=False, photo_textures=0.0):
    """JPEG bytes of the shape in a furniture colour, from a random view, over a random backdrop: procedural,
    or (half the time, when `backdrops` holds uint8 RGB photos) a crop of one; `jitter` adds photo faults.

    The camera is orthographic, or with `camera_distances` (low, high) a pinhole camera at a random
    distance in that range of grid edges: near is a wide-angle photo, far a telephoto one. The picture is
    a square around the object, or with `boxed` a box around it padded to a square with black, which is
    what a photo cropped to the object becomes in the model's preprocessing (`data.preprocess_image`).
    With `room`, the procedural backdrops are rooms (a wall over a floor), the object casts a soft shadow
    on the backdrop and its colour gets a random surface pattern. With `clutter` the picture gets the hard
    cases of real photos: views from higher above (CLUTTER_ELEVATIONS), a box frame that sometimes cuts
    into the object, and sometimes things in front of or on it. A share `photo_textures` of the pictures
    shows the object textured with a close crop of a backdrop photo (a procedural colour pattern without
    photos) under its own shading, as real furniture is rarely one colour.
    """
    color = np.clip(np.asarray(FURNITURE_COLORS[rng.integers(len(FURNITURE_COLORS))]) + rng.normal(0, 12, 3), 0, 255)
    azimuth, elevation = rng.uniform(0, 360), rng.uniform(*(CLUTTER_ELEVATIONS if clutter else ELEVATIONS))
    rgba = render.render_rgba(voxels, size=2 * size, azimuth=azimuth, elevation=elevation,
                              color=tuple(color), distance=_camera_distance(rng, camera_distances))
    rgba = _boxed(rgba, rng, size, truncate=clutter) if boxed else _framed(rgba, rng, size)
    alpha = rgba[..., 3:] / 255.0
    if len(backdrops) and rng.random() < 0.5:
        backdrop = _photo_crop(backdrops[rng.integers(len(backdrops))], rng, size)
    else:
        backdrop = _room(rng, size) if room else _background(rng, size)
    backdrop, colors = backdrop[: alpha.shape[0], : alpha.shape[1]], rgba[..., :3].astype(np.float64)
    if room:
        backdrop, colors = _shadowed(backdrop, alpha, rng), _textured(colors, rng)
    if photo_textures and rng.random() < photo_textures:
        colors = _photo_textured(colors, color, _texture(backdrops, rng, *alpha.shape[:2]))
    image = colors * alpha + backdrop * (1 - alpha)
    if clutter and rng.random() < OCCLUDED_SHARE:
        image = _occluded(image, rng)
    quality = 90
    if jitter:
        image, quality = _with_faults(image, rng), int(rng.integers(40, 95))
    if boxed:
        image = _padded_square(image, size)
    buffer = io.BytesIO()
    Image.fromarray(render.to_bytes(image)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()

"""Checks every sample before it becomes a record; a failed check is a reason to skip it."""

import io

import numpy as np
from PIL import Image

MIN_OCCUPANCY = 1e-4
MAX_OCCUPANCY = 0.9
MIN_IMAGE_EDGE = 8


class InvalidSample(ValueError):
    """A sample that must not be written; the message is the reason listed in report.json."""


def check_voxels(grid, resolution=None):
    """Raises InvalidSample unless `grid` is a finite, cubic, binary-ish grid of sane occupancy."""
    grid = np.asarray(grid)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise InvalidSample(f"voxels are not a cubic 3D grid (shape {grid.shape})")
    if resolution is not None and grid.shape[0] != resolution:
        raise InvalidSample(f"voxels are {grid.shape[0]}^3, expected {resolution}^3")
    if not (grid.dtype == bool or np.issubdtype(grid.dtype, np.number)):
        raise InvalidSample(f"voxels have dtype {grid.dtype}, expected bool or numbers")
    if np.issubdtype(grid.dtype, np.floating) and not np.isfinite(grid).all():
        raise InvalidSample("voxels hold NaN or infinite values")
    occupancy = float(np.mean(grid > 0.5))
    if occupancy == 0:
        raise InvalidSample("voxel grid is empty")
    if not MIN_OCCUPANCY <= occupancy <= MAX_OCCUPANCY:
        raise InvalidSample(f"occupancy {occupancy:.5f} is outside [{MIN_OCCUPANCY}, {MAX_OCCUPANCY}]")


def check_image(encoded):
    """Raises InvalidSample unless `encoded` is a decodable RGB JPEG or PNG of at least 8x8 pixels."""
    try:
        with Image.open(io.BytesIO(encoded)) as picture:
            picture.load()
            kind, mode, size = picture.format, picture.mode, picture.size
    except Exception as error:  # Pillow raises many types for broken data
        raise InvalidSample(f"image does not decode ({type(error).__name__}: {error})") from None
    if kind not in ("JPEG", "PNG") or mode != "RGB":
        raise InvalidSample(f"image is {kind} {mode}, expected RGB JPEG or PNG")
    if min(size) < MIN_IMAGE_EDGE:
        raise InvalidSample(f"image is {size[0]}x{size[1]}, smaller than {MIN_IMAGE_EDGE}x{MIN_IMAGE_EDGE}")


def encode_jpeg(rgb, quality=95):
    """uint8 (H, W, 3) -> JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, np.uint8)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()

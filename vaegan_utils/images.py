"""Photos as the model's image input, with Pillow and numpy only (no TensorFlow).

`load_image(path, size)` gives the same pixels as training's
`keras_vaegan.data.decode_image` (decode to RGB, pad to square, resize with an
antialiased bilinear filter, scale to [0, 1]): the padding arithmetic follows
`tf.image.resize_with_pad` in float32, and the resize runs on float pixels so
nothing is rounded to bytes in between. EXIF orientation is ignored, as in training.
"""

import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from vaegan_utils.errors import first_line

MIN_EDGE = 16
MAX_PIXELS = 50_000_000
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
CONVERTIBLE_MODES = ("RGB", "RGBA", "RGBX", "L", "LA", "P", "PA", "1", "CMYK", "YCbCr", "La")


class ImageError(ValueError):
    """A file cannot serve as a photo; the message names the file and the reason."""


def pixel_count_problem(width, height):
    """Why an image of this size is refused before its pixels are decoded (over MAX_PIXELS), or None."""
    if width * height > MAX_PIXELS:
        return f"{width}x{height} pixels is too large (at most {MAX_PIXELS // 1_000_000} megapixels)"
    return None


def _check_size(path, width, height):
    if min(width, height) < MIN_EDGE:
        raise ImageError(f"{path}: {width}x{height} pixels is too small (at least {MIN_EDGE} on each side)")
    problem = pixel_count_problem(width, height)
    if problem:
        raise ImageError(f"{path}: {problem}")


def _to_rgb(path, picture):
    """uint8 (H, W, 3): gray is repeated, alpha dropped, palette and CMYK converted, 16 bits cut to 8."""
    if picture.mode in SIXTEEN_BIT_MODES:
        gray = (np.asarray(picture, np.uint32) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if picture.mode not in CONVERTIBLE_MODES:
        raise ImageError(f"{path}: pixel format {picture.mode} is not supported (use 8-bit RGB, gray, palette or CMYK)")
    return np.asarray(picture.convert("RGB"))


def read_rgb(path):
    """The photo at `path` as uint8 RGB (H, W, 3); ImageError for missing, broken, tiny or huge files."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as picture:
                _check_size(path, *picture.size)
                picture.load()
                return _to_rgb(path, picture)
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: too large (at most {MAX_PIXELS // 1_000_000} megapixels)") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, ImageError):
            raise
        raise ImageError(f"{path}: damaged image ({first_line(error, 200)})") from None


def resize_with_pad(rgb, size):
    """uint8 (H, W, 3) -> float32 (size, size, 3) in [0, 1], as tf.image.resize_with_pad(antialias=True)."""
    height, width = rgb.shape[:2]
    f32 = np.float32
    ratio = max(f32(width) / f32(size), f32(height) / f32(size))
    resized_height_float, resized_width_float = f32(height) / ratio, f32(width) / ratio
    resized = (int(np.floor(resized_width_float)), int(np.floor(resized_height_float)))
    top = max(0, int(np.floor((f32(size) - resized_height_float) / f32(2))))
    left = max(0, int(np.floor((f32(size) - resized_width_float) / f32(2))))
    pixels = rgb.astype(np.float32) * f32(1 / 255)
    out = np.zeros((size, size, 3), np.float32)
    for channel in range(3):
        plane = Image.fromarray(np.ascontiguousarray(pixels[..., channel]))  # float32: mode "F"
        plane = np.asarray(plane.resize(resized, Image.Resampling.BILINEAR))
        out[top : top + resized[1], left : left + resized[0], channel] = plane
    return out


def load_image(path, size):
    """The photo at `path` as the encoder's input: float32 (size, size, 3) in [0, 1]."""
    return resize_with_pad(read_rgb(path), size)

"""Training-time photo augmentation: the faults real photos have and renders lack.

Each picture is reframed (zoomed, shifted, padded with black like the
square padding of `data.preprocess_image`), recoloured, sometimes turned grey,
blurred and JPEG-compressed. Every draw is stateless: the same seed gives the
same picture, so a resumed run sees the inputs an uninterrupted one would.
"""

import tensorflow as tf

ZOOM = (0.8, 1.2)  # crop side relative to the picture: < 1 zooms in, > 1 shrinks the object
SHIFT = 0.08  # largest shift of the crop centre, in picture widths
GREY_CHANCE = 0.1
BLUR_SIGMA = (0.05, 1.2)  # pixels of a 5x5 Gaussian; the low end leaves the picture sharp
JPEG_QUALITY = (30, 95)


def _uniform(seed, low, high):
    return tf.random.stateless_uniform([], seed, low, high)


def reframe(image, seed):
    """A random square crop of `image` (S, S, 3), partly outside it where zoomed out, resized back to S."""
    zoom_seed, x_seed, y_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    half = _uniform(zoom_seed, *ZOOM) / 2
    centre_x = 0.5 + _uniform(x_seed, -SHIFT, SHIFT)
    centre_y = 0.5 + _uniform(y_seed, -SHIFT, SHIFT)
    box = tf.stack([centre_y - half, centre_x - half, centre_y + half, centre_x + half])[None]
    size = tf.shape(image)[:2]
    return tf.image.crop_and_resize(image[None], box, [0], size, extrapolation_value=0.0)[0]


def blur(image, sigma):
    """Gaussian blur of (S, S, 3) `image` with a 5x5 kernel of standard deviation `sigma` pixels."""
    offsets = tf.range(-2.0, 3.0)
    weights = tf.exp(-(offsets**2) / (2 * sigma**2))
    weights /= tf.reduce_sum(weights)
    kernel = tf.tile((weights[:, None] * weights[None, :])[:, :, None, None], [1, 1, 3, 1])
    padded = tf.pad(image[None], [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC")
    return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")[0]


def augment_photo(image, seed):
    """float32 (S, S, 3) in [0, 1] -> a randomly reframed, recoloured, blurred, compressed copy.

    `seed` is an int tensor of shape [2]; equal seeds give equal pictures.
    """
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 8))
    image = reframe(image, seeds[0])
    image = tf.image.stateless_random_brightness(image, 0.15, seeds[1])
    image = tf.image.stateless_random_contrast(image, 0.7, 1.3, seeds[2])
    image = tf.image.stateless_random_saturation(image, 0.5, 1.5, seeds[3])
    image = tf.image.stateless_random_hue(image, 0.04, seeds[4])
    grey = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
    image = tf.where(_uniform(seeds[5], 0.0, 1.0) < GREY_CHANCE, grey, image)
    image = blur(image, _uniform(seeds[6], *BLUR_SIGMA))
    image = tf.clip_by_value(image, 0.0, 1.0)
    return tf.image.stateless_random_jpeg_quality(image, *JPEG_QUALITY, seeds[7])

"""Pictures of the latent space: interpolation, shape arithmetic, and what single generator units do."""

import numpy as np
import tensorflow as tf


def interpolate(start, end, steps):
    """`steps` latent vectors from `start` to `end` (both included), linearly."""
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return (1 - weights) * np.asarray(start, np.float32) + weights * np.asarray(end, np.float32)


def arithmetic(a, b, c):
    """The latent vectors [a, b, c, a - b + c] (the paper's shape arithmetic)."""
    a, b, c = (np.asarray(v, np.float32) for v in (a, b, c))
    return np.stack([a, b, c, a - b + c])


def generate_with_first_layer_scaled(generator, latent, scale):
    """Occupancy (N, R, R, R) of the generator with its first block's output channels multiplied by
    `scale`, (C,) for every shape or (N, C) per shape: ones are the plain generator, a 0 switches a unit off."""
    x = generator.blocks[0](generator.reshape(tf.constant(latent, tf.float32)), training=False)
    scale = np.asarray(scale, np.float32)
    x = x * tf.cast(tf.constant(scale.reshape(scale.shape[:-1] + (1, 1, 1, -1)) if scale.ndim == 2 else scale),
                    x.dtype)
    for block in generator.blocks[1:]:
        x = block(x, training=False)
    return generator.occupancy(x).numpy()[..., 0]


def unit_effects(generator, latent, threshold=0.5, batch_size=64, progress=None):
    """(C, N) voxel counts that switching each first-layer unit off changes in each shape of `latent`."""
    units, count = generator.blocks[0].filters, len(latent)
    original = generate_with_first_layer_scaled(generator, latent, np.ones(units, np.float32)) > threshold
    pairs = [(unit, index) for unit in range(units) for index in range(count)]
    effects = np.zeros((units, count), np.int64)
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        scale = np.ones((len(chunk), units), np.float32)
        scale[np.arange(len(chunk)), [unit for unit, _ in chunk]] = 0.0
        indices = [index for _, index in chunk]
        ablated = generate_with_first_layer_scaled(generator, latent[indices], scale) > threshold
        changed = np.logical_xor(original[indices], ablated).reshape(len(chunk), -1).sum(axis=1)
        for (unit, index), value in zip(chunk, changed):
            effects[unit, index] = value
        if progress:
            progress(min(start + batch_size, len(pairs)), len(pairs))
    return effects


def unit_rows(generator, latent, effects, count, threshold=0.5):
    """For the `count` units whose removal changes most voxels: (unit, shape index, original grid,
    grid without the unit), both binary; the unit adds `original & ~without` and removes `without & ~original`."""
    rows = []
    units = generator.blocks[0].filters
    for unit in np.argsort(-effects.sum(axis=1), kind="stable")[:count]:
        index = int(np.argmax(effects[unit]))
        scale = np.ones(units, np.float32)
        scale[unit] = 0.0
        z = latent[index : index + 1]
        original = generate_with_first_layer_scaled(generator, z, np.ones(units, np.float32))[0] > threshold
        ablated = generate_with_first_layer_scaled(generator, z, scale)[0] > threshold
        rows.append((int(unit), index, original, ablated))
    return rows

"""Generation quality of a generator's samples against real shapes it never saw.

Following Achlioptas et al. 2018 ("Learning representations and generative
models for 3D point clouds") and Yang et al. 2019 (PointFlow), under two
distances d (see shape_distance: 1 - IoU, and Chamfer on surface points):

- coverage: the share of held-out shapes that are the nearest held-out shape
  (under d) of at least one sample; a sample equally near several takes the
  first of them. Low coverage is mode collapse.
- MMD (minimum matching distance): the mean over held-out shapes of the
  distance to their closest sample. Low is faithful.
- 1-NNA: leave-one-out 1-nearest-neighbour accuracy of telling samples from
  held-out shapes, on equal numbers of each (the larger set is subsampled
  with the seed). 0.5 is ideal, 1.0 means the two sets are trivially told
  apart, and below 0.5 means samples sit closer to the held-out shapes than
  to each other. Ties are split: a shape scores the share of its own set among
  the shapes at its smallest distance, itself included when that distance is 0
  (an exact copy cannot tell which set it came from). So two identical sets
  score exactly 0.5.
- memorization: each sample's IoU with its nearest training shape (1 is a copy).
"""

import numpy as np

from keras_vaegan.evaluation.shape_distance import chamfer_distances, iou_distances, occupancy
from vaegan_utils import render

TIE_TOLERANCE = 1e-12
MEANINGS = {
    "coverage_iou": "share of held-out shapes that are some sample's nearest (IoU distance); 1 is best",
    "mmd_iou": "mean over held-out shapes of 1 - IoU with the closest sample; 0 is best",
    "one_nna_iou": "1-NN accuracy telling samples from held-out shapes (IoU distance); 0.5 is best",
    "coverage_chamfer": "as coverage_iou, under the Chamfer distance of surface points",
    "mmd_chamfer": "as mmd_iou, Chamfer distance (squared, unit cube); 0 is best",
    "one_nna_chamfer": "as one_nna_iou, under the Chamfer distance",
    "empty_fraction": "samples with no voxel above the threshold",
    "full_fraction": "samples with every voxel above the threshold",
    "sample_occupancy": "mean share of occupied voxels in the samples",
    "held_out_occupancy": "the same in the held-out shapes",
    "memorization_nn_iou": "mean IoU of each sample with its nearest training shape (1: copies)",
    "num_samples": "generated shapes",
    "num_held_out": "real shapes not seen in training",
    "num_one_nna": "shapes of each set in the 1-NNA test",
    "num_train": "training shapes given",
    "num_train_used": "training shapes searched for the nearest (random subset)",
    "resolution": "grid edge",
    "points_per_shape": "surface points per shape for the Chamfer distance",
    "threshold": "occupancy threshold for the samples",
    "seed": "seed of subsets and surface points",
}


def coverage_and_mmd(distances):
    """Coverage and MMD from (samples, references) distances."""
    matched = np.unique(np.argmin(distances, axis=1))
    return len(matched) / distances.shape[1], float(distances.min(axis=0).mean())


def one_nna_accuracy(distances, labels):
    """Leave-one-out 1-NN accuracy of `labels` (K,) from symmetric (K, K) distances, ties split
    as in the module docstring."""
    distances = np.array(distances, float)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.min(axis=1)
    tied = distances <= nearest[:, None] + TIE_TOLERANCE
    same = labels[:, None] == labels[None, :]
    copy = nearest <= TIE_TOLERANCE  # the shape itself is among those tied at distance 0
    return float((((tied & same).sum(1) + copy) / (tied.sum(1) + copy)).mean())


def _subset(rng, total, count):
    """Sorted random indices of `count` of `total` items; all of them when count >= total."""
    if count >= total:
        return np.arange(total)
    return np.sort(rng.choice(total, count, replace=False))


def _check_resolutions(**sets):
    resolutions = {name: grids.shape[1] for name, grids in sets.items()}
    if len(set(resolutions.values())) > 1:
        listed = ", ".join(f"{name} {r}^3" for name, r in resolutions.items())
        raise ValueError(f"grids of different resolutions: {listed}; resample them to one first")


def generation_metrics(samples, held_out, train, threshold=0.5, seed=0, points_per_shape=512, max_train=1000):
    """Coverage, MMD and 1-NNA (IoU and Chamfer), empty/full shares and memorization, as a flat dict.

    samples: (N, R, R, R[, 1]) generated occupancy in [0, 1]; held_out: (M, ...) real shapes not seen
    in training; train: (K, ...) training shapes, of which at most `max_train` (a random subset drawn
    with `seed`) are searched for each sample's nearest. All are binarized at `threshold`; the
    Chamfer distance uses `points_per_shape` surface points of each (see shape_distance).
    """
    fake = occupancy(samples, threshold, "samples")
    real = occupancy(held_out, threshold, "held_out")
    known = occupancy(train, threshold, "train")
    _check_resolutions(samples=fake, held_out=real, train=known)
    rng = np.random.default_rng(seed)
    known_used = known[_subset(rng, len(known), max_train)]
    count = min(len(fake), len(real))
    nna_members = np.concatenate([_subset(rng, len(fake), count), len(fake) + _subset(rng, len(real), count)])
    labels = np.repeat([0, 1], count)

    union = np.concatenate([fake, real])
    chamfer = chamfer_distances(union, points_per_shape, seed)
    metrics = {}
    for name, distances in (("iou", iou_distances(union, union)), ("chamfer", chamfer)):
        coverage, mmd = coverage_and_mmd(distances[:len(fake), len(fake):])
        metrics[f"coverage_{name}"] = coverage
        metrics[f"mmd_{name}"] = mmd
        metrics[f"one_nna_{name}"] = one_nna_accuracy(distances[np.ix_(nna_members, nna_members)], labels)
    per_sample = fake.reshape(len(fake), -1)
    metrics.update(
        empty_fraction=float((~per_sample.any(1)).mean()),
        full_fraction=float(per_sample.all(1).mean()),
        sample_occupancy=float(per_sample.mean()),
        held_out_occupancy=float(real.mean()),
        memorization_nn_iou=float((1.0 - iou_distances(fake, known_used).min(axis=1)).mean()),
        num_samples=len(fake),
        num_held_out=len(real),
        num_one_nna=count,
        num_train=len(known),
        num_train_used=len(known_used),
        resolution=int(fake.shape[1]),
        points_per_shape=int(points_per_shape),
        threshold=float(threshold),
        seed=int(seed),
    )
    return metrics


def _format(value):
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{value:.4g}"


def generation_table(metrics):
    """A Markdown table of `generation_metrics`' output: metric, value, what it means."""
    rows = ["| metric | value | meaning |", "|---|---|---|"]
    rows += [f"| {name} | {_format(value)} | {MEANINGS.get(name, '')} |" for name, value in metrics.items()]
    return "\n".join(rows) + "\n"


def write_nearest_figure(samples, train, path, count=8, threshold=0.5, cell_size=128):
    """A PNG at `path` (written atomically): the first `count` samples, each beside its nearest
    training shape by IoU, labelled with that IoU; two pairs to a row."""
    if count < 1:
        raise ValueError(f"count: {count} must be at least 1")
    fake = occupancy(samples, threshold, "samples")[:count]
    known = occupancy(train, threshold, "train")
    _check_resolutions(samples=fake, train=known)
    distances = iou_distances(fake, known)
    nearest = distances.argmin(axis=1)
    grids, labels = [], []
    for i, j in enumerate(nearest):
        grids += [fake[i], known[j]]
        labels += [f"sample {i}", f"train {j}: IoU {1 - distances[i, j]:.2f}"]
    picture = render.render_grid(np.array(grids, np.float32), columns=4, cell_size=cell_size, labels=labels)
    render.save_png(picture, path)

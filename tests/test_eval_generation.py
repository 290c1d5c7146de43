"""Generation metrics: known answers on hand-built box sets, Chamfer against brute force, the
ModelNet chairs in ../shared/data split in two, and the nearest-shape figure."""

import gzip
import os

import numpy as np
import pytest
from PIL import Image

from keras_vaegan.evaluation import generation
from vaegan_utils import render
from keras_vaegan.evaluation.shape_distance import (
    EMPTY_CHAMFER,
    chamfer_distance,
    chamfer_distances,
    iou_distances,
    occupancy,
    surface_points,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAIRS = os.path.join(ROOT, "..", "shared", "data", "modelnet10-chair-32.npy.gz")


def box(resolution, low, high):
    """A float (R, R, R) grid occupied on [low, high) along every axis."""
    grid = np.zeros((resolution,) * 3, np.float32)
    grid[low[0]:high[0], low[1]:high[1], low[2]:high[2]] = 1.0
    return grid


def distinct_boxes():
    """Six different boxes in an 8^3 grid."""
    corners = [((0, 0, 0), (4, 4, 4)), ((4, 4, 4), (8, 8, 8)), ((0, 4, 0), (3, 8, 2)), ((2, 2, 2), (6, 6, 6)),
               ((0, 0, 6), (8, 8, 8)), ((5, 0, 0), (8, 2, 5))]
    return np.stack([box(8, low, high) for low, high in corners])


@pytest.fixture(scope="module")
def chairs():
    with gzip.open(CHAIRS) as handle:
        return np.load(handle)[:61, 0]


def brute_chamfer(a, b):
    squared = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return squared.min(1).mean() + squared.min(0).mean()


# ---------------------------------------------------------------- distances


def test_iou_distance_of_overlapping_disjoint_and_empty_boxes():
    a = box(8, (0, 0, 0), (4, 4, 4))
    half_above = box(8, (0, 0, 2), (4, 4, 6))  # shares 32 of its 64 voxels with a: IoU 32 / 96
    far = box(8, (4, 4, 4), (8, 8, 8))
    empty = np.zeros_like(a)
    grids = occupancy(np.stack([a, half_above, far, empty]))
    distances = iou_distances(grids, grids)
    assert distances[0, 1] == pytest.approx(2 / 3)
    assert distances[0, 2] == 1.0 and distances[1, 2] == 1.0
    assert distances[3, 3] == 0.0 and distances[0, 3] == 1.0
    np.testing.assert_array_equal(distances, distances.T)
    np.testing.assert_array_equal(np.diag(distances), 0.0)


def test_chamfer_distance_matches_brute_force_on_random_point_sets():
    rng = np.random.default_rng(3)
    for sizes in ((1, 1), (7, 11), (40, 5)):
        a, b = rng.random((sizes[0], 3)), rng.random((sizes[1], 3))
        assert chamfer_distance(a, b) == pytest.approx(brute_chamfer(a, b), rel=1e-12)
    assert chamfer_distance(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    assert chamfer_distance(np.zeros((0, 3)), rng.random((4, 3))) == EMPTY_CHAMFER


def test_pairwise_chamfer_of_grids_equals_chamfer_of_their_surface_points():
    rng = np.random.default_rng(0)
    grids = rng.random((5, 12, 12, 12)) < 0.15
    grids[2] = False  # an empty grid
    distances = chamfer_distances(grids, count=64, seed=4)
    for i in range(5):
        for j in range(5):
            expected = brute_chamfer(surface_points(grids[i], 64, 4), surface_points(grids[j], 64, 4)) if (
                grids[i].any() and grids[j].any()) else (0.0 if grids[i].any() == grids[j].any() else EMPTY_CHAMFER)
            assert distances[i, j] == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_surface_points_depend_on_the_grid_and_seed_only():
    cube = occupancy(box(8, (2, 2, 2), (6, 6, 6))[None])[0]
    points = surface_points(cube, 100, seed=1)
    assert points.shape == (100, 3)
    np.testing.assert_array_equal(points, surface_points(cube.copy(), 100, seed=1))
    assert not np.array_equal(points, surface_points(cube, 100, seed=2))
    voxels = points * 8 - 0.5  # back to indices: only the 56 of 64 voxels with an empty neighbour
    assert np.any((voxels == 2) | (voxels == 5), axis=1).all()
    assert len(np.unique(voxels, axis=0)) == 56  # each at least once
    single = occupancy(box(32, (3, 0, 31), (4, 1, 32))[None])[0]
    np.testing.assert_array_equal(surface_points(single, 5), np.tile([[3.5, 0.5, 31.5]], (5, 1)) / 32)
    assert surface_points(np.zeros((8, 8, 8), bool), 10).shape == (0, 3)


# ---------------------------------------------------------------- metrics, known answers


def test_identical_sets_cover_everything_at_distance_zero_and_are_indistinguishable():
    shapes = distinct_boxes()
    metrics = generation.generation_metrics(shapes, shapes.copy(), shapes)
    for name in ("iou", "chamfer"):
        assert metrics[f"coverage_{name}"] == 1.0
        assert metrics[f"mmd_{name}"] == 0.0
        assert metrics[f"one_nna_{name}"] == 0.5
    assert metrics["memorization_nn_iou"] == 1.0


def test_ties_are_split_and_duplicates_match_the_first_copy():
    """[A, A, B] against itself: every shape ties between its own set and the other at
    distance 0 (itself counted), so 1-NNA is 0.5; both copies of A match the first A."""
    a, b = distinct_boxes()[:2]
    shapes = np.stack([a, a, b])
    metrics = generation.generation_metrics(shapes, shapes.copy(), shapes)
    assert metrics["one_nna_iou"] == 0.5 and metrics["one_nna_chamfer"] == 0.5
    assert metrics["coverage_iou"] == pytest.approx(2 / 3)


def test_disjoint_boxes_give_the_hand_computed_mmd_and_coverage():
    a = box(8, (0, 0, 0), (4, 4, 4))
    far = box(8, (4, 4, 4), (8, 8, 8))
    half_above = box(8, (0, 0, 2), (4, 4, 6))  # 1 - IoU = 2/3 from a, 1 from far
    metrics = generation.generation_metrics(np.stack([half_above] * 2), np.stack([a, far]), np.stack([a]))
    assert metrics["mmd_iou"] == pytest.approx((2 / 3 + 1) / 2)
    assert metrics["coverage_iou"] == 0.5
    assert metrics["memorization_nn_iou"] == pytest.approx(1 / 3)


def test_single_voxels_give_the_hand_computed_chamfer_metrics_and_one_nna():
    """Samples: two copies of voxel (1,0,0); held out: voxels (0,0,0) and (3,3,3), R = 4.
    Chamfer = 2 * squared distance / 16: 0.125 to the first, 2 * 22 / 16 = 2.75 to the second."""
    sample = box(4, (1, 0, 0), (2, 1, 1))
    held_out = np.stack([box(4, (0, 0, 0), (1, 1, 1)), box(4, (3, 3, 3), (4, 4, 4))])
    metrics = generation.generation_metrics(np.stack([sample, sample]), held_out, held_out)
    assert metrics["mmd_chamfer"] == pytest.approx((0.125 + 2.75) / 2)
    assert metrics["coverage_chamfer"] == 0.5
    # Chamfer: the samples' nearest is each other (right); both held-out voxels' nearest is a sample (wrong).
    assert metrics["one_nna_chamfer"] == 0.5
    # IoU: all distinct voxels are at distance 1, so a held-out voxel ties between 2 samples and
    # 1 held-out (scores 1/3), a sample's nearest is its copy (scores 1): (1 + 1 + 1/3 + 1/3) / 4.
    assert metrics["one_nna_iou"] == pytest.approx(2 / 3)
    assert metrics["mmd_iou"] == 1.0


def test_collapsed_generator_covers_one_held_out_shape():
    shapes = distinct_boxes()
    metrics = generation.generation_metrics(np.stack([shapes[3]] * 10), shapes, shapes)
    assert metrics["coverage_iou"] == pytest.approx(1 / 6)
    assert metrics["coverage_chamfer"] == pytest.approx(1 / 6)
    assert metrics["num_one_nna"] == 6 and metrics["num_samples"] == 10


def test_empty_and_full_samples_are_counted_and_never_give_nan():
    shapes = distinct_boxes()
    faint = np.full((8, 8, 8), 0.4, np.float32)
    samples = np.stack([np.zeros((8, 8, 8)), np.ones((8, 8, 8)), shapes[0], faint])
    metrics = generation.generation_metrics(samples, shapes, shapes)
    assert metrics["empty_fraction"] == 0.5 and metrics["full_fraction"] == 0.25
    assert all(np.isfinite(value) for value in metrics.values())
    metrics = generation.generation_metrics(samples, shapes, shapes, threshold=0.3)
    assert metrics["empty_fraction"] == 0.25 and metrics["full_fraction"] == 0.5
    all_empty = generation.generation_metrics(np.zeros((3, 8, 8, 8)), shapes, shapes)
    assert all_empty["mmd_chamfer"] == EMPTY_CHAMFER and all_empty["mmd_iou"] == 1.0
    assert all_empty["memorization_nn_iou"] == 0.0


def test_copies_of_training_shapes_have_nearest_iou_one_and_train_is_subsampled():
    shapes = distinct_boxes()
    train = np.concatenate([shapes] * 5)
    metrics = generation.generation_metrics(shapes[[1, 4]][..., None], shapes, train, max_train=30)
    assert metrics["memorization_nn_iou"] == 1.0
    assert metrics["num_train"] == 30 and metrics["num_train_used"] == 30
    subsampled = generation.generation_metrics(shapes[[1, 4]], shapes, train, max_train=4, seed=1)
    assert subsampled["num_train_used"] == 4


def test_larger_set_is_subsampled_for_one_nna_with_the_seed():
    shapes = distinct_boxes()
    samples = np.concatenate([shapes, shapes[:3]])
    first = generation.generation_metrics(samples, shapes, shapes, seed=5)
    assert first["num_one_nna"] == 6
    assert first == generation.generation_metrics(samples, shapes, shapes, seed=5)


def test_bad_inputs_are_refused_with_the_set_named():
    shapes = distinct_boxes()
    with pytest.raises(ValueError, match="resolutions: samples 8.*held_out 16"):
        generation.generation_metrics(shapes, np.zeros((2, 16, 16, 16)), shapes)
    with pytest.raises(ValueError, match="train: expected cubic"):
        generation.generation_metrics(shapes, shapes, np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="held_out: no grids"):
        generation.generation_metrics(shapes, np.zeros((0, 8, 8, 8)), shapes)


# ---------------------------------------------------------------- real chairs


def test_real_chairs_split_in_two_halves_score_far_above_a_collapsed_set(chairs):
    """Entry 0 is the real all-empty grid; the halves are chairs 1-30 and 31-60."""
    first, second, train = chairs[1:31], chairs[31:61], chairs[0:31]
    halves = generation.generation_metrics(first, second, train)
    collapsed = generation.generation_metrics(np.stack([chairs[1]] * 30), second, train)
    assert collapsed["coverage_iou"] == pytest.approx(1 / 30)
    assert halves["coverage_iou"] > 0.4 and halves["coverage_chamfer"] > 0.4
    assert halves["mmd_iou"] < collapsed["mmd_iou"] and halves["mmd_chamfer"] < collapsed["mmd_chamfer"]
    assert 0.3 < halves["one_nna_iou"] < 0.7 and 0.3 < halves["one_nna_chamfer"] < 0.7
    assert collapsed["one_nna_iou"] > 0.9
    assert halves["memorization_nn_iou"] == 1.0  # these samples are training shapes
    assert halves["empty_fraction"] == 0.0 and halves["num_train"] == 31
    with_empty = generation.generation_metrics(chairs[0:30], second, train)
    assert with_empty["empty_fraction"] == pytest.approx(1 / 30)
    assert all(np.isfinite(value) for value in with_empty.values())


# ---------------------------------------------------------------- table and figure


def test_table_has_one_row_per_metric_with_its_meaning():
    shapes = distinct_boxes()
    metrics = generation.generation_metrics(shapes, shapes, shapes)
    table = generation.generation_table(metrics)
    lines = table.strip().splitlines()
    assert lines[0] == "| metric | value | meaning |" and len(lines) == 2 + len(metrics)
    assert "| coverage_iou | 1 | share of held-out shapes" in table
    assert "| num_samples | 6 | generated shapes |" in table


def test_nearest_figure_shows_each_sample_beside_its_nearest_training_shape(tmp_path, chairs):
    train = chairs[1:21]
    samples = train[[4, 9, 13]] * 0.9  # occupancy values, above the threshold where the chairs are
    path = str(tmp_path / "nearest.png")
    generation.write_nearest_figure(samples, train, path, count=3, cell_size=64)
    picture = np.asarray(Image.open(path))
    labels = ["sample 0", "train 4: IoU 1.00", "sample 1", "train 9: IoU 1.00", "sample 2", "train 13: IoU 1.00"]
    grids = np.stack([samples[0], train[4], samples[1], train[9], samples[2], train[13]])
    np.testing.assert_array_equal(picture, render.render_grid(grids, columns=4, cell_size=64, labels=labels))
    assert os.listdir(tmp_path) == ["nearest.png"]
    with pytest.raises(ValueError, match="count"):
        generation.write_nearest_figure(samples, train, path, count=0)

"""data_tools.meshes: voxelization (sizes, filling, orientation) on fixtures and on the real meshes."""

import os

import numpy as np
import pytest

from PIL import Image

from data_tools.meshes import PLAIN_BACKGROUND, normalize_mesh, render_views, surface_voxels, to_z_up, voxelize_mesh
from vaegan_utils.readers import read_mesh

MESHES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "meshes")
OFF_FILES = ["modelnet-chair_0001.off", "modelnet-chair_0002.off", "modelnet-toilet_0001.off"]
OBJ = "shapenet-model_normalized.obj"

BOX_FACES = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


def box(size, origin=(0, 0, 0)):
    """A closed box mesh with edges `size` from `origin`: (vertices (8, 3), faces (12, 3))."""
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    return corners * size + origin, BOX_FACES


def occupied_span(grid, axis):
    """(first, last) occupied index along an axis."""
    other = tuple(a for a in range(3) if a != axis)
    index = np.nonzero(grid.any(axis=other))[0]
    return index.min(), index.max()


def test_normalize_mesh_centres_and_fits_the_longest_edge():
    vertices = normalize_mesh(np.array([[1.0, 2, 3], [5, 4, 3.5], [3, 3, 4]]))
    np.testing.assert_allclose(vertices.min(axis=0), [-0.5, -0.25, -0.125])
    np.testing.assert_allclose(vertices.max(axis=0), [0.5, 0.25, 0.125])
    with pytest.raises(ValueError, match="coincide"):
        normalize_mesh(np.ones((3, 3)))


def test_y_up_conversion_is_a_rotation_taking_y_up_and_minus_z_to_the_front():
    turned = to_z_up(np.eye(3), "y")
    assert np.isclose(np.linalg.det(turned), 1.0)
    np.testing.assert_array_equal(turned[1], [0, 0, 1])  # +y (up) becomes +z
    np.testing.assert_array_equal(to_z_up(np.array([[0.0, 0, -1]]), "y"), [[0, -1, 0]])  # front -z to -y
    np.testing.assert_array_equal(to_z_up(np.eye(3), "z"), np.eye(3))
    with pytest.raises(ValueError, match="up_axis"):
        to_z_up(np.eye(3), "x")


@pytest.mark.parametrize("resolution", [20, 32])
def test_a_box_becomes_a_filled_box_of_the_expected_size(resolution):
    vertices, faces = box((1, 1, 2), origin=(3, -7, 1))
    grid = voxelize_mesh(vertices, faces, resolution)
    half = resolution // 2
    expected = np.zeros((resolution,) * 3, bool)
    expected[half // 2 : half // 2 + half, half // 2 : half // 2 + half, :] = True
    np.testing.assert_array_equal(grid, expected)


def test_the_surface_alone_is_hollow_and_voxelize_fills_it():
    vertices, faces = box((1, 1, 1))
    surface = surface_voxels(normalize_mesh(vertices), faces, 16)
    assert surface[0].all() and surface[-1].all() and not surface[1:-1, 1:-1, 1:-1].any()
    assert voxelize_mesh(vertices, faces, 16).all()


def test_a_mesh_taller_along_its_up_axis_is_taller_along_z():
    vertices, faces = box((1, 3, 1))  # tall along y
    as_y_up = voxelize_mesh(vertices, faces, 24, up_axis="y")
    as_z_up = voxelize_mesh(vertices, faces, 24, up_axis="z")
    assert occupied_span(as_y_up, 2) == (0, 23) and occupied_span(as_y_up, 1) == (8, 15)
    assert occupied_span(as_z_up, 1) == (0, 23) and occupied_span(as_z_up, 2) == (8, 15)


def test_open_and_flat_meshes_keep_their_surface():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    grid = voxelize_mesh(vertices, np.array([[0, 1, 2], [0, 2, 3]]), 8)
    assert grid[:, :, 4].all() and grid.sum() == 64  # the square at mid-height, one voxel thick


@pytest.mark.parametrize("name", OFF_FILES + [OBJ])
def test_real_meshes_voxelize_to_shapes_spanning_the_grid(name):
    vertices, faces = read_mesh(os.path.join(MESHES, name))
    grid = voxelize_mesh(vertices, faces, 32, up_axis="y" if name == OBJ else "z")
    assert grid.shape == (32, 32, 32) and grid.dtype == bool
    spans = [occupied_span(grid, axis) for axis in range(3)]
    assert max(last - first for first, last in spans) == 31  # the longest edge spans the grid
    assert all(abs((first + last) / 2 - 15.5) <= 1 for first, last in spans)  # centred


def test_modelnet_chair_stands_with_its_seat_below_its_back_which_is_behind():
    vertices, faces = read_mesh(os.path.join(MESHES, "modelnet-chair_0002.off"))
    grid = voxelize_mesh(vertices, faces, 32, up_axis="z")
    seat = np.argmax(grid.sum(axis=(0, 1)))
    assert occupied_span(grid, 2)[1] - seat >= 10  # the back rises well above the seat
    back = np.nonzero(grid[:, :, -4:].any(axis=(0, 2)))[0]
    assert back.min() > 16  # the top of the back is at high y: the chair faces -y


def test_shapenet_obj_is_turned_upright_facing_minus_y():
    """The real OBJ is a birdhouse: its perch sticks out of the front, low on the house."""
    vertices, faces = read_mesh(os.path.join(MESHES, OBJ))
    grid = voxelize_mesh(vertices, faces, 32, up_axis="y")
    assert np.ptp(np.nonzero(grid.any(axis=(0, 1)))[0]) == 31  # tallest along z, as a birdhouse is
    per_y = grid.sum(axis=(0, 2))
    front = np.nonzero(per_y)[0][:3]
    assert per_y[front].max() <= 10  # only the thin perch at the lowest y
    assert grid[:, front, :].nonzero()[2].max() < 16  # low on the house


# ---------------------------------------------------------------- render_views


def chair():
    return read_mesh(os.path.join(MESHES, "modelnet-chair_0002.off"))


def test_same_seed_same_bytes_other_seed_other_views():
    vertices, faces = chair()
    first = render_views(vertices, faces, views=3, image_size=32, seed=7)
    again = render_views(vertices, faces, views=3, image_size=32, seed=7)
    other = render_views(vertices, faces, views=3, image_size=32, seed=8)
    assert len(first) == 3 and all(p.shape == (32, 32, 3) and p.dtype == np.uint8 for p in first)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, again))
    assert not any(np.array_equal(a, b) for a, b in zip(first, other))
    assert not np.array_equal(first[0], first[1])  # views differ from each other


def test_the_object_is_visible_over_a_background_image(tmp_path):
    green = str(tmp_path / "green.png")
    Image.new("RGB", (40, 30), (0, 200, 0)).save(green)
    vertices, faces = chair()
    for photo in render_views(vertices, faces, views=4, image_size=48, seed=3, backgrounds=[green],
                              color=(220, 40, 40)):
        np.testing.assert_array_equal(photo[[0, 0, -1, -1], [0, -1, 0, -1]], [[0, 200, 0]] * 4)
        object_pixels = (photo[..., 0] > photo[..., 1]).mean()  # red over green
        assert 0.1 < object_pixels < 0.8


def test_plain_background_without_images_and_random_crops_of_real_photos():
    vertices, faces = chair()
    plain = render_views(vertices, faces, views=2, image_size=32, seed=0)
    for photo in plain:
        np.testing.assert_array_equal(photo[0, 0], PLAIN_BACKGROUND)
    photos = os.path.join(MESHES, "..", "ikea-sample", "Images")
    paths = [os.path.join(photos, name) for name in sorted(os.listdir(photos))[:5]]
    over_photos = render_views(vertices, faces, views=2, image_size=32, seed=0, backgrounds=paths)
    assert all((photo[0, 0] != PLAIN_BACKGROUND).any() for photo in over_photos)


def test_a_mesh_tall_along_its_up_axis_looks_tall():
    vertices, faces = box((1, 3, 1))
    for photo in render_views(vertices, faces, views=4, image_size=48, seed=0, up_axis="y"):
        rows, columns = np.nonzero((photo != PLAIN_BACKGROUND).any(axis=-1))
        assert np.ptp(rows) > 1.5 * np.ptp(columns)


@pytest.mark.parametrize("arguments", [dict(views=0), dict(image_size=4), dict(backgrounds=[])])
def test_render_views_rejects_bad_arguments(arguments):
    vertices, faces = box((1, 1, 1))
    with pytest.raises(ValueError):
        render_views(vertices, faces, **{**dict(views=1, image_size=32, seed=0), **arguments})

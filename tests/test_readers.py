"""vaegan_utils.readers on the real files in ../shared/data and on broken fixtures built in tmp_path."""

import gzip
import io
import os
import pickle

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

import hostile_files as hostile
from vaegan_utils.readers import (BadFile, read_binvox, read_image, read_labelled_voxels, read_mat_voxels, read_mesh,
                                  read_off, read_voxel_array, write_binvox)

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
BINVOX = [os.path.join(DATA, "binvox", name) for name in ("chair.binvox", "8a85.binvox")]
OFF_FILES = [os.path.join(DATA, "meshes", name)
             for name in ("modelnet-chair_0001.off", "modelnet-chair_0002.off", "modelnet-toilet_0001.off")]
OBJ = os.path.join(DATA, "meshes", "shapenet-model_normalized.obj")
IKEA_MAT = os.path.join(DATA, "ikea-sample", "Voxels", "1.mat")
MODELNET = os.path.join(DATA, "modelnet10-chair-32.npy.gz")
IKEA_PHOTO = os.path.join(DATA, "ikea-sample", "Images", "00000002_001.jpg")


def copy_cut(source, target, fraction=0.5):
    """Writes the first `fraction` of `source`'s bytes to `target` (a truncated copy)."""
    data = open(source, "rb").read()
    target.write_bytes(data[: int(len(data) * fraction)])
    return str(target)


def assert_bad(reader, path, *words):
    """reader(path) raises BadFile whose message starts with the path and contains `words`."""
    with pytest.raises(BadFile) as info:
        reader(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for word in words:
        assert word in message, message
    return message


def test_bad_file_names_the_path_and_survives_pickling():
    error = BadFile("/x/a.binvox", "truncated")
    assert str(error) == "/x/a.binvox: truncated"
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.path, copy.problem) == (str(error), "/x/a.binvox", "truncated")


# ---------------------------------------------------------------- binvox


@pytest.mark.parametrize("path", BINVOX)
def test_real_binvox_files_are_32_cubes_and_round_trip(path, tmp_path):
    grid = read_binvox(path)
    assert grid.shape == (32, 32, 32) and grid.dtype == bool and grid.any()
    copy = str(tmp_path / "copy.binvox")
    write_binvox(copy, grid)
    np.testing.assert_array_equal(read_binvox(copy), grid)


def test_binvox_chair_stands_upright_with_its_back_behind():
    grid = read_binvox(BINVOX[0])
    z = np.nonzero(grid.any(axis=(0, 1)))[0]
    # The seat is the z level with the widest footprint, in the bottom half.
    seat = z[np.argmax([grid[:, :, k].sum() for k in z])]
    assert seat < (z.min() + z.max()) / 2
    # Above the seat only the back remains, and it stands at high y (behind, the front faces -y).
    above = np.nonzero(grid[:, :, seat + 3 :].any(axis=(0, 2)))[0]
    below = np.nonzero(grid[:, :, :seat].any(axis=(0, 2)))[0]
    assert above.mean() > below.mean() + 5


def test_binvox_rewrite_is_byte_identical_on_the_stored_runs(tmp_path):
    """Our run-length encoding reproduces the real file's voxel bytes (runs split at 255)."""
    original = open(BINVOX[1], "rb").read()
    copy = tmp_path / "copy.binvox"
    write_binvox(str(copy), read_binvox(BINVOX[1]))
    assert copy.read_bytes().split(b"data\n", 1)[1] == original.split(b"data\n", 1)[1]


def test_binvox_round_trip_keeps_axes_translate_and_scale(tmp_path):
    rng = np.random.default_rng(0)
    grid = rng.random((16, 16, 16)) < 0.3
    grid[:, :, 15] = True  # a long run over 255 voxels
    path = str(tmp_path / "a.binvox")
    write_binvox(path, grid, translate=(0.5, -1.25, 3.0), scale=2.5)
    np.testing.assert_array_equal(read_binvox(path), grid)
    header = open(path, "rb").read().split(b"data\n")[0].decode()
    assert "translate 0.5 -1.25 3.0" in header and "scale 2.5" in header
    assert os.listdir(tmp_path) == ["a.binvox"]  # no temporary file left


def test_write_binvox_replaces_atomically_and_keeps_the_old_file_on_failure(tmp_path):
    path = str(tmp_path / "a.binvox")
    write_binvox(path, np.ones((4, 4, 4)))
    with pytest.raises(ValueError):
        write_binvox(path, np.ones((4, 4)))
    assert read_binvox(path).all() and os.listdir(tmp_path) == ["a.binvox"]


def test_truncated_binvox_reports_expected_and_found_voxels(tmp_path):
    data = open(BINVOX[0], "rb").read()
    header, runs = data.split(b"data\n", 1)
    cut = tmp_path / "cut.binvox"
    cut.write_bytes(header + b"data\n" + runs[: len(runs) // 4 * 2])
    assert_bad(read_binvox, str(cut), "truncated run-length data (expected 32768 voxels, got")


@pytest.mark.parametrize("content, words", [
    (None, ("truncated",)),
    (b"\x89PNG garbage bytes \x00\x01", ("not a binvox file",)),
    (b"#binvox 2\ndim 2 2 2\ndata\n\x00\x08", ("version 2",)),
    (b"#binvox 1\ntranslate 0 0 0\ndata\n\x00\x08", ("no 'dim'",)),
    (b"#binvox 1\ndim 2 x 2\ndata\n\x00\x08", ("non-numeric",)),
    (b"#binvox 1\ndim 2 2 2\n", ("'data'",)),
    (b"#binvox 1\ndim 2 2 2\ndata\n\x07\x08", ("value 7",)),
    (b"#binvox 1\ndim 2 2 2\ndata\n\x00\x08\x01", ("odd number",)),
    (b"#binvox 1\ndim 2 2 2\ndata\n\x00\x08\x01\x01", ("too much",)),
])
def test_broken_binvox_files_raise_bad_file(tmp_path, content, words):
    path = tmp_path / "broken.binvox"
    if content is None:
        copy_cut(BINVOX[1], path)
    else:
        path.write_bytes(content)
    assert_bad(read_binvox, str(path), *words)


def test_missing_binvox_raises_bad_file(tmp_path):
    assert_bad(read_binvox, str(tmp_path / "nope.binvox"), "No such file")


# ---------------------------------------------------------------- MATLAB


def test_real_ikea_mat_is_a_20_cube_with_axis_0_up():
    grid = read_mat_voxels(IKEA_MAT)
    assert grid.shape == (20, 20, 20) and grid.dtype == np.uint8 and set(np.unique(grid)) == {0, 1}
    # Model 43 is a chair: with axis 0 up, the widest level is the seat, and above it only a thin
    # back remains at one end of the seat (at low axis 2: this chair faces +axis 2).
    chair = read_mat_voxels(os.path.join(DATA, "ikea-sample", "Voxels", "43.mat"))
    seat = np.argmax(chair.sum(axis=(1, 2)))
    back = np.nonzero(chair[seat + 2 :].any(axis=(0, 1)))[0]
    seat_span = np.nonzero(chair[seat].any(axis=0))[0]
    assert 5 <= seat <= 12 and len(chair[seat + 2 :]) >= 6
    assert np.ptp(back) <= 2 < np.ptp(seat_span) and back.min() <= seat_span.min()


def _write_v73(path, **variables):
    """A MATLAB v7.3 file: HDF5 with a 512-byte user block, axes stored reversed as MATLAB does."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            f[name] = np.asarray(value).transpose()
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")


def test_mat_v5_and_v73_of_the_same_array_read_the_same(tmp_path):
    grid = np.zeros((4, 5, 6), np.uint8)
    grid[1, 2, 3] = grid[0, 4, 5] = 1
    scipy.io.savemat(tmp_path / "v5.mat", {"other": np.ones(2), "voxel": grid})
    _write_v73(str(tmp_path / "v73.mat"), other=np.ones(2), voxel=grid)
    for name in ("v5.mat", "v73.mat"):
        np.testing.assert_array_equal(read_mat_voxels(str(tmp_path / name)), grid)


def test_mat_field_choice_and_4d_stacks(tmp_path):
    stack = np.arange(2 * 3 * 3 * 3).reshape(2, 3, 3, 3) % 2
    path = str(tmp_path / "a.mat")
    scipy.io.savemat(path, {"volume": np.zeros((3, 3, 3)), "instance": stack})
    np.testing.assert_array_equal(read_mat_voxels(path), stack)  # `instance` comes before `volume`
    assert read_mat_voxels(path, field="volume").shape == (3, 3, 3)
    assert_bad(lambda p: read_mat_voxels(p, field="grid"), path, "no field 'grid'", "instance", "volume")


@pytest.mark.parametrize("variables, words", [
    ({"labels": np.ones(3), "name": "x"}, ("none of the fields", "labels", "name")),
    ({"grid": np.ones((3, 3))}, ("not a 3D or 4D",)),
])
def test_mat_without_a_voxel_field_names_the_fields_present(tmp_path, variables, words):
    path = str(tmp_path / "a.mat")
    scipy.io.savemat(path, variables)
    assert_bad(read_mat_voxels, path, *words)


@pytest.mark.parametrize("make", ["cut", "garbage", "cut_v73", "missing"])
def test_broken_mat_files_raise_bad_file(tmp_path, make):
    path = tmp_path / "broken.mat"
    if make == "cut":
        copy_cut(IKEA_MAT, path)
    elif make == "garbage":
        path.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(range(256)) * 3)
    elif make == "cut_v73":
        _write_v73(str(tmp_path / "whole.mat"), grid=np.ones((8, 8, 8)))
        copy_cut(tmp_path / "whole.mat", path)
    assert_bad(read_mat_voxels, str(path))


# ---------------------------------------------------------------- .npy / .npy.gz


def test_real_modelnet_array_reads_890_bool_grids_with_an_empty_first_one():
    grids = read_voxel_array(MODELNET)
    assert grids.shape == (890, 32, 32, 32) and grids.dtype == bool
    assert not grids[0].any()
    assert grids[1:].reshape(889, -1).any(axis=1).all()
    with gzip.open(MODELNET) as f:
        reference = np.load(f)[:50, 0] > 0.5
    np.testing.assert_array_equal(grids[:50], reference)


@pytest.mark.parametrize("shape", [(6, 6, 6), (3, 6, 6, 6), (3, 1, 6, 6, 6)])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [bool, np.uint8, np.float32])
def test_voxel_arrays_of_every_accepted_shape(tmp_path, shape, compress, dtype):
    values = (np.random.default_rng(1).random(shape) < 0.4).astype(dtype)
    path = str(tmp_path / ("a.npy.gz" if compress else "a.npy"))
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as f:
        np.save(f, values)
    grids = read_voxel_array(path)
    np.testing.assert_array_equal(grids, values.reshape(-1, 6, 6, 6).astype(bool))


def test_fortran_order_arrays_read_in_the_right_order(tmp_path):
    values = np.asfortranarray(np.random.default_rng(2).random((2, 4, 4, 4)) < 0.5)
    path = str(tmp_path / "f.npy")
    np.save(path, values)
    np.testing.assert_array_equal(read_voxel_array(path), values)


@pytest.mark.parametrize("values, words", [
    (np.zeros((4, 5, 6)), ("not (r, r, r)",)),
    (np.zeros((2, 2, 4, 4, 4)), ("not (r, r, r)",)),
    (np.full((4, 4, 4), 2.0), ("value 2.0",)),
    (np.full((4, 4, 4), np.nan), ("value nan",)),
    (np.array([[[None]]]), ("object",)),
])
def test_voxel_arrays_of_the_wrong_shape_or_values_raise(tmp_path, values, words):
    path = str(tmp_path / "a.npy")
    np.save(path, values, allow_pickle=True)
    assert_bad(read_voxel_array, path, *words)


@pytest.mark.parametrize("make, words", [
    ("cut_gz", ()), ("cut_npy", ("truncated",)), ("garbage_gz", ()), ("garbage_npy", ("not a .npy",)),
])
def test_broken_voxel_arrays_raise_bad_file(tmp_path, make, words):
    values = np.random.default_rng(3).random((20, 8, 8, 8)) < 0.5
    whole = tmp_path / "whole.npy"
    np.save(whole, values)
    if make == "cut_gz":
        path = copy_cut(MODELNET, tmp_path / "cut.npy.gz", 0.3)
    elif make == "cut_npy":
        path = copy_cut(whole, tmp_path / "cut.npy")
    elif make == "garbage_gz":
        path = str(tmp_path / "g.npy.gz")
        open(path, "wb").write(b"\x1f\x8b" + bytes(range(200)))
    else:
        path = str(tmp_path / "g.npy")
        open(path, "wb").write(bytes(range(200)))
    assert_bad(read_voxel_array, path, *words)


# ---------------------------------------------------------------- OFF and other meshes


@pytest.mark.parametrize("path", OFF_FILES)
def test_real_off_files_read_with_their_declared_counts(path):
    with open(path) as f:
        f.readline()
        num_vertices, num_faces = map(int, f.readline().split()[:2])
    vertices, faces = read_off(path)
    assert vertices.shape == (num_vertices, 3) and vertices.dtype == np.float64
    assert faces.dtype == np.int64 and faces.shape[1] == 3 and len(faces) >= num_faces
    assert faces.min() >= 0 and faces.max() < num_vertices
    assert np.abs(vertices).max() <= 0.5 + 1e-6  # ModelNet meshes normalized to the unit cube
    assert read_mesh(path)[0].shape == vertices.shape


def test_off_with_counts_on_the_off_line_reads_the_same(tmp_path):
    text = open(OFF_FILES[1]).read()
    header, counts, rest = text.split("\n", 2)
    path = tmp_path / "raw.off"
    path.write_text(f"{header}{counts}\n{rest}")
    assert path.read_text().startswith("OFF192 96 0\n")
    for got, want in zip(read_off(str(path)), read_off(OFF_FILES[1])):
        np.testing.assert_array_equal(got, want)


def test_off_comments_blank_lines_colors_and_polygons(tmp_path):
    path = tmp_path / "quad.off"
    path.write_text("# a unit square and a triangle\nOFF\n\n5 2 0  # counts\n"
                    "0 0 0\n1 0 0\n1 1 0\n0 1 0 # corner\n0 0 1\n"
                    "4 0 1 2 3 255 0 0\n3 0 1 4\n")
    vertices, faces = read_off(str(path))
    assert vertices.shape == (5, 3)
    np.testing.assert_array_equal(faces, [[0, 1, 2], [0, 2, 3], [0, 1, 4]])


@pytest.mark.parametrize("text, words", [
    ("PLY\n3 1 0\n", ("not an OFF file",)),
    ("", ("not an OFF file",)),
    ("OFF\n", ("counts",)),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n", ("truncated: 2 of 3 vertices",)),
    ("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", ("truncated: 3 vertices, 1 of 2 faces",)),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", ("line 6", "index 3 out of range")),
    ("OFF\n3 1 0\n0 0 0\n1 zero 0\n0 1 0\n3 0 1 2\n", ("line 4", "non-numeric")),
    ("OFF\n3 1 0\n0 0 0\n1 0\n0 1 0\n3 0 1 2\n", ("line 4", "3 coordinates")),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1", ("truncated, line 6",)),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n2 0 1\n", ("line 6", "3 or more")),
    ("OFF\nthree 1 0\n", ("line 2", "non-numeric")),
])
def test_broken_off_files_raise_bad_file(tmp_path, text, words):
    path = tmp_path / "broken.off"
    path.write_text(text)
    assert_bad(read_off, str(path), *words)


def test_real_off_cut_in_half_and_garbage_raise_bad_file(tmp_path):
    assert_bad(read_off, copy_cut(OFF_FILES[0], tmp_path / "cut.off"), "truncated")
    garbage = tmp_path / "garbage.off"
    garbage.write_bytes(bytes(range(256)) * 4)
    assert_bad(read_off, str(garbage), "not an OFF file")


def test_obj_without_its_mtl_reads():
    assert not os.path.exists(os.path.join(DATA, "meshes", "model_normalized.mtl"))
    vertices, faces = read_mesh(OBJ)
    assert vertices.shape == (138, 3) and faces.shape == (624, 3)  # as the file declares
    assert faces.max() < len(vertices)


def _box_mesh():
    vertices = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 2)], float)
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return vertices, faces


@pytest.mark.parametrize("extension", ["obj", "ply", "stl", "off"])
def test_every_mesh_format_reads_a_box_written_by_open3d(tmp_path, extension):
    import open3d as o3d

    vertices, faces = _box_mesh()
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces))
    mesh.compute_triangle_normals()
    path = str(tmp_path / f"box.{extension}")
    assert o3d.io.write_triangle_mesh(path, mesh)
    got_vertices, got_faces = read_mesh(path)
    assert len(got_faces) == 12 and len(got_vertices) == 8
    np.testing.assert_allclose(got_vertices.min(axis=0), [0, 0, 0])
    np.testing.assert_allclose(got_vertices.max(axis=0), [1, 1, 2])


@pytest.mark.parametrize("extension", ["obj", "ply", "stl"])
@pytest.mark.parametrize("make", ["empty", "garbage", "cut"])
def test_broken_open3d_meshes_raise_bad_file(tmp_path, extension, make):
    """open3d returns an empty mesh instead of failing: that must become a BadFile."""
    import open3d as o3d

    path = tmp_path / f"broken.{extension}"
    if make == "empty":
        path.write_bytes(b"")
    elif make == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    else:
        whole = str(tmp_path / f"whole.{extension}")
        vertices, faces = _box_mesh()
        o3d.io.write_triangle_mesh(
            whole, o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces)))
        copy_cut(whole, path, 0.3)
    assert_bad(read_mesh, str(path))


@pytest.mark.parametrize("text, words", [
    ("OFF\n0 0 0\n", ("empty mesh",)),
    ("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n", ("empty mesh",)),
    ("OFF\n3 1 0\n0 0 0\nnan 0 0\n0 1 0\n3 0 1 2\n", ("NaN or infinite",)),
    ("OFF\n3 1 0\n0 0 0\ninf 0 0\n0 1 0\n3 0 1 2\n", ("NaN or infinite",)),
    ("OFF\n3 2 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n3 0 0 1\n", ("all 2 faces are degenerate",)),
])
def test_empty_nan_and_degenerate_meshes_raise_bad_file(tmp_path, text, words):
    path = tmp_path / "bad.off"
    path.write_text(text)
    assert_bad(read_mesh, str(path), *words)


def test_unknown_mesh_extension_raises_bad_file(tmp_path):
    path = tmp_path / "a.3ds"
    path.write_bytes(b"x")
    assert_bad(read_mesh, str(path), "unknown mesh format '.3ds'")


# ---------------------------------------------------------------- headers that lie


@pytest.mark.parametrize("name, content, reader, words", [
    ("x.ply", hostile.ply("ascii", vertices="1000000000"), read_mesh,
     ("header claims 1000000000 vertices, but the file holds 219 bytes (at most 9 vertices)",)),
    ("x.ply", hostile.ply("binary_little_endian", faces="1000"), read_mesh,
     ("header claims 1000 faces, but the file holds", "(at most 100 faces)")),
    ("x.ply", hostile.ply("ascii", vertices="-4"), read_mesh, ("header claims -4 vertices, a negative count",)),
    ("x.ply", hostile.ply("ascii", vertex_properties=("int128 x",)), read_mesh, ("not a property of a known type",)),
    ("x.stl", hostile.binary_stl(hostile.TETRAHEDRON[hostile.TETRAHEDRON_FACES], 1000), read_mesh,
     ("header claims 1000 triangles (50084 bytes), but the file holds 284 bytes (room for 4 triangles)",)),
    ("x.binvox", hostile.binvox("100000 100000 100000"), read_binvox, ("(1000000000000000 voxels), over the limit",)),
    ("x.binvox", hostile.binvox("64 64 64"), read_binvox,
     ("truncated: header claims dims (64, 64, 64)", "at most 255")),
    ("x.npy", hostile.npy_header((4, 8, 8, 8)) + bytes(100), read_voxel_array,
     ("truncated: header claims 4 grids of 8^3 (2048 bytes), but 100 bytes follow it (at most 0 grids)",)),
    ("x.npy.gz", gzip.compress(hostile.npy_header((3000, 32, 32, 32), "<f8"), mtime=0), read_voxel_array,
     ("array claims 786432000 bytes from", "more than 1032:1")),
    ("x.npz", hostile._claim_uncompressed_size(hostile._npz({"voxels.npy": hostile._npy(np.zeros(4))}), 10**8),
     read_labelled_voxels, ("member 'voxels.npy' claims 100000000 bytes from",)),
    ("x.mat", hostile.hdf5_mat_unwritten((512, 512, 512)), read_mat_voxels,
     ("variable 'grid' claims 134217728 bytes from 0 compressed bytes",)),
    ("x.png", hostile.png_header(9000, 9000), read_image, ("9000x9000 pixels is too large (at most 50 megapixels)",)),
])
def test_headers_claiming_more_than_the_file_holds_are_refused(tmp_path, name, content, reader, words):
    path = tmp_path / name
    path.write_bytes(content)
    assert_bad(reader, str(path), *words)


# ---------------------------------------------------------------- images


def _save(image, path, **options):
    image.save(path, **options)
    return str(path)


def test_real_ikea_photo_reads_as_rgb_uint8():
    image = read_image(IKEA_PHOTO)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[:2] == Image.open(IKEA_PHOTO).size[::-1]


@pytest.mark.parametrize("mode, color, expected", [
    ("L", 100, (100, 100, 100)),
    ("1", 1, (255, 255, 255)),
    ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
    ("RGB", (10, 200, 30), (10, 200, 30)),
])
def test_image_modes_become_rgb(tmp_path, mode, color, expected):
    path = _save(Image.new(mode, (5, 3), color), tmp_path / "a.tiff")
    image = read_image(path)
    assert image.shape == (3, 5, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[1, 1], expected)


def test_rgba_and_la_composite_over_white(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.putpixel((1, 1), (200, 0, 0, 255))
    rgba.putpixel((2, 2), (0, 0, 0, 128))
    image = read_image(_save(rgba, tmp_path / "a.png"))
    np.testing.assert_array_equal(image[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(image[1, 1], (200, 0, 0))
    assert 120 <= image[2, 2, 0] <= 135
    la = read_image(_save(Image.new("LA", (2, 2), (0, 0)), tmp_path / "la.png"))
    np.testing.assert_array_equal(la, np.full((2, 2, 3), 255))


def test_palette_images_with_and_without_transparency(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    np.testing.assert_array_equal(read_image(_save(palette, tmp_path / "p.png"))[0, 0], (10, 20, 30))
    np.testing.assert_array_equal(read_image(_save(palette, tmp_path / "t.png", transparency=1))[0, 0],
                                  (255, 255, 255))
    gif = read_image(_save(palette, tmp_path / "p.gif"))
    np.testing.assert_array_equal(gif[0, 0], (10, 20, 30))


def test_16_bit_grayscale_scales_to_8_bits(tmp_path):
    image = Image.fromarray(np.full((2, 3), 0x8000, np.uint16))
    assert image.mode.startswith("I;16")
    np.testing.assert_array_equal(read_image(_save(image, tmp_path / "g.png")), np.full((2, 3, 3), 128))


def test_exif_orientation_is_applied(tmp_path):
    picture = Image.new("RGB", (60, 20), (255, 255, 255))
    picture.paste((255, 0, 0), (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: shown rotated 90 degrees clockwise
    image = read_image(_save(picture, tmp_path / "r.jpg", exif=exif, quality=95))
    assert image.shape == (60, 20, 3)
    assert image[5, 15, 0] > 200 and image[5, 15, 1] < 60  # the red corner is now at the top right
    assert image[5, 5, 1] > 200


@pytest.mark.parametrize("make, words", [
    ("cut_jpeg", ("truncated",)),
    ("garbage", ("cannot identify",)),
    ("cut_png", ()),
    ("empty", ()),
    ("missing", ("no such file",)),
])
def test_broken_images_raise_bad_file(tmp_path, make, words):
    path = tmp_path / "broken.jpg"
    if make == "cut_jpeg":
        copy_cut(IKEA_PHOTO, path)
    elif make == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    elif make == "cut_png":
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buffer, "PNG")
        path = tmp_path / "broken.png"
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    elif make == "empty":
        path.write_bytes(b"")
    assert_bad(read_image, str(path), *words)

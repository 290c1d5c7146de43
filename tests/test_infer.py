"""The edge side: photo preprocessing without TensorFlow, meshes, and `python -m export.infer`.

The CLI runs in a subprocess that reports whether TensorFlow was ever imported.
"""

import glob
import json
import os
import struct
import subprocess
import sys
import zlib

import keras
import numpy as np
import pytest
from PIL import Image

from export import tflite
from export.edge import EdgeModel
from keras_vaegan.config import ModelConfig, TrainConfig
from keras_vaegan.data import decode_image
from keras_vaegan.models import build_model
from vaegan_utils.images import ImageError, load_image
from vaegan_utils.mesh import occupancy_mesh, signed_volume, vertex_normals, write_ply

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IKEA = os.path.join(ROOT, "..", "shared", "data", "ikea-sample", "Images")
PHOTOS = sorted(glob.glob(os.path.join(IKEA, "*.jpg")))
CHAIR = os.path.join(IKEA, "00000002_001.jpg")
LATENT = 32
IMAGE_SIZE = 64
# Runs export.infer as __main__, then prints whether any TensorFlow module was loaded.
NO_TF_WRAPPER = (
    "import runpy, sys\n"
    "code = 0\n"
    "try:\n"
    "    runpy.run_module('export.infer', run_name='__main__')\n"
    "except SystemExit as exit:\n"
    "    code = exit.code\n"
    "print('TENSORFLOW_LOADED=' + str(any(m.split('.')[0] == 'tensorflow' for m in sys.modules)))\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def edge_files(tmp_path_factory):
    """{kind: path} of fp32 TFLite files of one 3D-VAE-GAN, and the Keras model."""
    root = tmp_path_factory.mktemp("edge")
    config = ModelConfig(resolution=32, latent_dim=LATENT, image_size=IMAGE_SIZE)
    model = build_model(config, TrainConfig(batch_size=2))
    last = model.generator.blocks[-1].conv
    last.kernel.assign(last.kernel.numpy() * 20)  # probabilities spread over (0, 1), as after training
    paths = {}
    for kind in ("generator", "encoder", "reconstruct"):
        saved = str(root / f"{kind}_saved_model")
        tflite.write_saved_model(model, kind, saved)
        paths[kind] = str(root / f"{kind}_fp32.tflite")
        with open(paths[kind], "wb") as handle:
            handle.write(tflite.convert(saved, "tflite_fp32"))
    return paths, model


def run_infer(*args, cwd=None):
    """(exit code, stdout, stderr, whether TensorFlow was imported) of `python -m export.infer args`."""
    command = [sys.executable, "-c", NO_TF_WRAPPER, *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd or ROOT)
    lines = done.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("TENSORFLOW_LOADED="), done.stdout + done.stderr
    return done.returncode, "\n".join(lines[:-1]), done.stderr, lines[-1] == "TENSORFLOW_LOADED=True"


# ---------------------------------------------------------------- preprocessing


def test_preprocessing_matches_training_on_the_real_ikea_photos():
    worst, means = 0.0, []
    for path in PHOTOS:
        with open(path, "rb") as handle:
            expected = decode_image(handle.read(), IMAGE_SIZE).numpy()
        difference = np.abs(load_image(path, IMAGE_SIZE) - expected)
        worst, means = max(worst, difference.max()), means + [difference.mean()]
    # Measured: max 0.0117 (3/255), mean 0.0027. The resize matches TensorFlow's to 3e-6 on the
    # same RGB bytes; the rest is the JPEG decoders (TensorFlow's default IDCT is INTEGER_FAST).
    assert len(PHOTOS) == 60
    assert worst < 4 / 255 and np.mean(means) < 1 / 255


@pytest.mark.parametrize("mode, suffix", [("L", "png"), ("RGBA", "png"), ("P", "png"), ("LA", "png"),
                                          ("I;16", "png"), ("RGB", "png"), ("CMYK", "jpg")])
def test_other_pixel_formats_are_converted_as_training_decodes_them(mode, suffix, tmp_path):
    source = Image.open(CHAIR)
    if mode == "I;16":
        picture = Image.fromarray(np.asarray(source.convert("L")).astype(np.uint16) * 257)
    else:
        picture = source.convert(mode)
    path = str(tmp_path / f"photo.{suffix}")
    picture.save(path)
    assert Image.open(path).mode == mode
    with open(path, "rb") as handle:
        expected = decode_image(handle.read(), IMAGE_SIZE).numpy()
    # Lossless files match to float rounding; the CMYK JPEG measured 0.0047 (JPEG decoders differ).
    tolerance = 2 / 255 if suffix == "jpg" else 1e-5
    np.testing.assert_allclose(load_image(path, IMAGE_SIZE), expected, atol=tolerance)


def test_padding_keeps_the_aspect_ratio_centred(tmp_path):
    wide = np.full((20, 80, 3), 255, np.uint8)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    pixels = load_image(str(tmp_path / "wide.png"), 32)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.float32
    rows = np.flatnonzero(pixels[:, 16, 0] > 0.5)
    assert (rows[0], rows[-1]) == (12, 19)


# ---------------------------------------------------------------- meshes


def test_mesh_of_a_box_is_closed_wound_outwards_in_voxel_units(tmp_path):
    grid = np.zeros((16, 16, 16), np.float32)
    grid[2:6, 3:12, 0:9] = 1.0  # touches the floor: padding closes it
    vertices, faces = occupancy_mesh(grid[..., None])
    assert vertices.min(axis=0).tolist() == [2, 3, 0] and vertices.max(axis=0).tolist() == [6, 12, 9]
    assert signed_volume(vertices, faces) > 0.8 * 4 * 9 * 9
    normals = vertex_normals(vertices, faces)
    outward = np.einsum("ij,ij->i", normals, vertices - vertices.mean(axis=0))
    assert (outward > 0).all()
    path = str(tmp_path / "box.ply")
    write_ply(path, vertices, faces)
    import open3d

    mesh = open3d.io.read_triangle_mesh(path)
    assert len(mesh.triangles) == len(faces) and mesh.has_vertex_normals()
    assert mesh.is_watertight() and mesh.get_volume() == pytest.approx(signed_volume(vertices, faces), rel=1e-5)
    np.testing.assert_allclose(np.asarray(mesh.vertex_normals), normals, atol=1e-6)
    assert os.listdir(tmp_path) == ["box.ply"]


def test_an_empty_grid_gives_an_empty_mesh(tmp_path):
    vertices, faces = occupancy_mesh(np.full((8, 8, 8), 0.2))
    assert vertices.shape == (0, 3) and faces.shape == (0, 3)
    write_ply(str(tmp_path / "empty.ply"), vertices, faces)
    assert b"element vertex 0\n" in (tmp_path / "empty.ply").read_bytes()


# ---------------------------------------------------------------- the CLI


def test_importing_the_edge_cli_loads_no_tensorflow_keras_or_keras_vaegan():
    probe = ("import sys, export.infer\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'keras_vaegan'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.split() == ["[]"], done.stdout + done.stderr


def test_a_real_photo_becomes_npy_mesh_and_png_without_tensorflow(edge_files, tmp_path):
    paths, model = edge_files
    out = tmp_path / "out"
    code, stdout, stderr, tensorflow_loaded = run_infer(
        f"--model={paths['reconstruct']}", f"--image={CHAIR}", f"--out={out}")
    assert code == 0, stderr
    assert not tensorflow_loaded
    assert sorted(os.listdir(out)) == ["00000002_001.npy", "00000002_001.ply", "00000002_001.png"]
    occupancy = np.load(out / "00000002_001.npy")
    assert occupancy.shape == (32, 32, 32) and occupancy.dtype == np.float32
    expected = keras.ops.convert_to_numpy(model.reconstruct(load_image(CHAIR, IMAGE_SIZE)[None]))[0, ..., 0]
    np.testing.assert_allclose(occupancy, expected, atol=1e-5)
    assert 0 < (occupancy > 0.5).mean() < 1
    assert (out / "00000002_001.ply").read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    assert Image.open(out / "00000002_001.png").size == (2 * 256 + 1, 256)


def test_a_folder_of_photos_is_read_with_progress(edge_files, tmp_path):
    paths, _ = edge_files
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in PHOTOS[:3]:
        (folder / os.path.basename(path)).write_bytes(open(path, "rb").read())
    (folder / "notes.txt").write_text("not a photo, skipped by its extension")
    code, stdout, stderr, tensorflow_loaded = run_infer(
        f"--model={paths['reconstruct']}", f"--image={folder}", f"--out={tmp_path / 'out'}", "--render_size=64")
    assert code == 0 and not tensorflow_loaded, stderr
    assert len(os.listdir(tmp_path / "out")) == 9
    assert "inference: 3/3 photos (100%)" in stderr


def test_samples_from_a_generator_file_follow_the_seed(edge_files, tmp_path):
    paths, _ = edge_files
    for out, seed in (("a", 3), ("b", 3), ("c", 4)):
        code, _, stderr, tensorflow_loaded = run_infer(
            f"--model={paths['generator']}", "--sample=2", f"--seed={seed}", f"--out={tmp_path / out}",
            "--render_size=64")
        assert code == 0 and not tensorflow_loaded, stderr
    names = sorted(os.listdir(tmp_path / "a"))
    assert names == [f"sample_seed3_00{i}.{ext}" for i in range(2) for ext in ("npy", "ply", "png")]
    first, again = (np.load(tmp_path / d / "sample_seed3_000.npy") for d in ("a", "b"))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, np.load(tmp_path / "c" / "sample_seed4_000.npy"))
    z = np.random.default_rng(3).standard_normal((2, LATENT)).astype(np.float32)
    np.testing.assert_allclose(first, EdgeModel(paths["generator"]).run(z[0])["occupancy"])
    code, _, stderr, _ = run_infer(f"--model={paths['generator']}", "--sample=1", "--seed=3", "--latent_std=0.33",
                                   f"--out={tmp_path / 'narrow'}", "--render_size=64")
    assert code == 0, stderr
    np.testing.assert_allclose(np.load(tmp_path / "narrow" / "sample_seed3_000.npy"),
                               EdgeModel(paths["generator"]).run(0.33 * z[0])["occupancy"], rtol=1e-5, atol=1e-6)


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(path, width, height):
    """A PNG whose header claims width x height with no pixel data: Pillow reads its size, nothing more."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", b"")
                     + _png_chunk(b"IEND", b""))


def _bad_image(kind, folder):
    path = os.path.join(folder, f"{kind}.jpg" if kind != "huge" else "huge.png")
    if kind == "not_an_image":
        with open(path, "w") as handle:
            handle.write("just text")
    elif kind == "truncated":
        with open(CHAIR, "rb") as source, open(path, "wb") as handle:
            handle.write(source.read()[:3000])
    elif kind == "tiny":
        Image.new("RGB", (12, 40)).save(path)
    elif kind == "huge":
        _png_header_only(path, 8000, 7000)
    elif kind == "empty":
        open(path, "wb").close()
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("not_an_image", "not_an_image.jpg: not an image Pillow can read"),
        ("empty", "empty.jpg: not an image Pillow can read"),
        ("truncated", "truncated.jpg: damaged image (image file is truncated"),
        ("tiny", "tiny.jpg: 12x40 pixels is too small (at least 16 on each side)"),
        ("huge", "huge.png: 8000x7000 pixels is too large (at most 50 megapixels)"),
        ("missing_photo", "missing.jpg: no such file"),
        ("generator_with_image", "is a generator file; --image needs a reconstruct_*.tflite file"),
        ("encoder_with_image", "is an encoder file; --image needs a reconstruct_*.tflite file"),
        ("reconstruct_with_sample", "is a reconstruct file; --sample needs a generator_*.tflite file"),
        ("missing_model", "missing.tflite: no such file"),
        ("corrupt_model", "corrupt.tflite: not a TFLite model"),
        ("keras_model", "model.keras: not a TFLite model"),
        ("out_under_a_file", "cannot be written"),
        ("no_mode", "give either --image (a photo or a folder) or --sample N"),
        ("empty_folder", "holds no photos"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, expected, edge_files, tmp_path):
    paths, _ = edge_files
    folder = str(tmp_path)
    model, out, mode = paths["reconstruct"], os.path.join(folder, "out"), [f"--image={CHAIR}"]
    if case in ("not_an_image", "empty", "truncated", "tiny", "huge"):
        mode = [f"--image={_bad_image(case, folder)}"]
    elif case == "missing_photo":
        mode = [f"--image={os.path.join(folder, 'missing.jpg')}"]
    elif case == "generator_with_image":
        model = paths["generator"]
    elif case == "encoder_with_image":
        model = paths["encoder"]
    elif case == "reconstruct_with_sample":
        mode = ["--sample=2"]
    elif case == "missing_model":
        model = os.path.join(folder, "missing.tflite")
    elif case == "corrupt_model":
        model = os.path.join(folder, "corrupt.tflite")
        with open(model, "wb") as handle:
            handle.write(b"TFL3" + bytes(range(256)) * 4)
    elif case == "keras_model":
        model = os.path.join(folder, "model.keras")
        keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]).save(model)
    elif case == "out_under_a_file":
        open(os.path.join(folder, "file"), "w").close()
        out = os.path.join(folder, "file", "out")
    elif case == "no_mode":
        mode = []
    elif case == "empty_folder":
        os.makedirs(os.path.join(folder, "photos"))
        mode = [f"--image={os.path.join(folder, 'photos')}"]
    before = sorted(os.listdir(folder))
    code, _, stderr, tensorflow_loaded = run_infer(f"--model={model}", f"--out={out}", *mode)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert sorted(os.listdir(folder)) == before
    assert not tensorflow_loaded


def test_a_bad_photo_in_a_folder_stops_before_any_output(edge_files, tmp_path):
    paths, _ = edge_files
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(open(CHAIR, "rb").read())
    (folder / "b.jpg").write_bytes(open(CHAIR, "rb").read()[:2000])
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.npy").write_bytes(b"kept")
    code, _, stderr, _ = run_infer(f"--model={paths['reconstruct']}", f"--image={folder}", f"--out={out}")
    assert code == 2 and "b.jpg: damaged image" in stderr
    assert os.listdir(out) == ["earlier.npy"]

"""The 3D report: page contents, PLY files beside it, training curves, the CLI and its bad inputs."""

import base64
import glob
import io
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import box_voxels, foreground_share, in_process, run_module, save_tiny_model
from keras_vaegan import curves, report_page
from keras_vaegan.data import encode_example
from vaegan_utils import render
from vaegan_utils.mesh import occupancy_mesh, signed_volume

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IKEA = os.path.join(ROOT, "..", "shared", "data", "ikea-sample", "Images")


def ply_counts(path):
    """(vertices, faces) declared in a PLY header."""
    with open(path, "rb") as handle:
        header = handle.read(600).split(b"end_header")[0].decode("ascii")
    return int(re.search(r"element vertex (\d+)", header)[1]), int(re.search(r"element face (\d+)", header)[1])


def embedded_shapes(page):
    return json.loads(re.search(r'<script type="application/json" id="shape-data">(.*?)</script>', page, re.S)[1])


def test_grid_status_names_empty_and_full_grids():
    assert report_page.grid_status(np.zeros((4, 4, 4))) == "empty: no voxel above 0.5"
    assert report_page.grid_status(np.ones((4, 4, 4, 1))) == "full: every voxel above 0.5"
    assert report_page.grid_status(box_voxels(4, (0, 0, 0), (1, 2, 3))) == "6 voxels"


def test_page_embeds_every_mesh_and_writes_them_beside_it(tmp_path):
    box = box_voxels(32, (4, 4, 0), (28, 20, 10))
    empty, full = np.zeros_like(box), np.ones_like(box)
    photos = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    curves_picture = np.full((20, 30, 3), 255, np.uint8)
    path = report_page.write_report(
        str(tmp_path), "a <title>", samples=np.stack([box, empty, full]), interpolation=np.stack([empty, box]),
        reconstructions=(photos, np.stack([box, empty])), curves=curves_picture,
    )
    page = open(path, encoding="utf-8").read()
    shapes = embedded_shapes(page)
    names = ["sample-00", "sample-01", "sample-02", "interpolation-00", "interpolation-01",
             "reconstruction-00", "reconstruction-01"]
    assert sorted(os.listdir(tmp_path / "meshes")) == sorted(f"{name}.ply" for name in names)
    assert len(shapes) == len(names) == page.count('<canvas class="shape"')
    box_vertices, box_faces = occupancy_mesh(box)
    assert ply_counts(tmp_path / "meshes" / "sample-00.ply") == (len(box_vertices), len(box_faces))
    decoded = np.frombuffer(base64.b64decode(shapes[0]["vertices"]), "<f4").reshape(-1, 3)
    np.testing.assert_array_equal(decoded, box_vertices)
    assert ply_counts(tmp_path / "meshes" / "sample-01.ply") == (0, 0)  # the empty grid: no crash, no surface
    assert shapes[1]["vertices"] == "" and "empty: no voxel above 0.5" in page
    full_vertices, full_faces = occupancy_mesh(full)  # the full grid: a closed cube around the whole grid
    assert ply_counts(tmp_path / "meshes" / "sample-02.ply") == (len(full_vertices), len(full_faces))
    assert signed_volume(full_vertices, full_faces) > 0.95 * 32**3
    assert "full: every voxel above 0.5" in page
    assert page.count('<img class="photo"') == 2 and "a &lt;title&gt;" in page
    assert os.path.isfile(tmp_path / "curves.png") and 'src="data:image/png;base64,' in page
    # Self-contained: nothing is fetched from elsewhere.
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script src" not in page
    assert not glob.glob(str(tmp_path / "**" / "*.tmp-*"), recursive=True)


def test_every_shape_has_a_still_picture_for_browsers_without_webgl(tmp_path):
    box = box_voxels(32, (4, 4, 0), (28, 20, 10))
    path = report_page.write_report(str(tmp_path), "t", samples=np.stack([box, np.zeros_like(box)]),
                                    interpolation=np.stack([box[..., 0], box[..., 0]]))
    page = open(path, encoding="utf-8").read()
    stills = re.findall(r'<img class="still" alt="([^"]*)" src="data:image/png;base64,([^"]+)"', page)
    assert len(stills) == page.count('<canvas class="shape"') == 4
    pictures = [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")) for _, data in stills]
    assert {picture.shape for picture in pictures} == {(report_page.CANVAS_SIZE, report_page.CANVAS_SIZE, 3)}
    np.testing.assert_array_equal(pictures[0], render.render_voxels(box, size=report_page.CANVAS_SIZE))
    assert foreground_share(pictures[0]) > 0.1 and foreground_share(pictures[1]) == 0  # the empty grid
    assert "empty: no voxel above 0.5" in stills[1][0]
    # Without WebGL (or JavaScript) the body keeps the class that hides the canvases and shows the stills.
    assert '<body class="no-webgl">' in page and "body.no-webgl img.still { display: block; }" in page


def test_page_says_why_a_section_is_missing(tmp_path):
    box = box_voxels(32, (4, 4, 0), (28, 20, 10))
    path = report_page.write_report(
        str(tmp_path), "t", np.stack([box]), np.stack([box, box]),
        notes={"reconstructions": "this model has no encoder", "curves": "no training logs in x/logs"},
    )
    page = open(path, encoding="utf-8").read()
    assert "this model has no encoder" in page and "no training logs in x/logs" in page
    assert '<img class="photo"' not in page and not os.path.exists(tmp_path / "curves.png")


def test_curves_read_tensorflow_scalars_and_draw_one_panel_each(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step in range(1, 6):
            tf.summary.scalar("d_loss", 1.0 / step, step=step)
            tf.summary.scalar("g_loss", float(step), step=step)
        tf.summary.image("samples", np.zeros((1, 4, 4, 3), np.float32), step=1)  # not a curve
    writer.flush()
    scalars = curves.read_scalars(str(tmp_path))
    assert list(scalars) == ["d_loss", "g_loss"]
    assert scalars["g_loss"] == ([1, 2, 3, 4, 5], pytest.approx([1, 2, 3, 4, 5]))
    picture = curves.draw_curves(scalars)
    assert picture.shape == (curves.PANEL[1], 2 * curves.PANEL[0], 3) and picture.dtype == np.uint8
    assert (picture == curves.LINE_COLOR).all(axis=-1).sum() > 100  # the lines were drawn
    assert curves.read_scalars(str(tmp_path / "missing")) == {} and curves.draw_curves({}) is None


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with a tiny 3D-VAE-GAN, its logs and a TFRecord shard of three IKEA photos."""
    root = tmp_path_factory.mktemp("run")
    save_tiny_model(str(root), "vaegan")
    writer = tf.summary.create_file_writer(str(root / "logs"))
    with writer.as_default():
        for step in (10, 20):
            tf.summary.scalar("d_loss", 0.5, step=step)
    writer.flush()
    os.makedirs(root / "data")
    with tf.io.TFRecordWriter(str(root / "data" / "train.tfrecord")) as records:
        for i, path in enumerate(sorted(glob.glob(os.path.join(IKEA, "*.jpg")))[:3]):
            records.write(encode_example(np.zeros((32, 32, 32), bool), open(path, "rb").read(), "chair", 2, str(i)))
    return root


@pytest.fixture
def run_report(capsys, monkeypatch):
    """Runs the report command in this process on (args...) from the repository folder; a CompletedProcess."""
    from keras_vaegan import report

    monkeypatch.chdir(ROOT)
    return in_process(report.main, report.FLAGS, capsys)


def test_cli_writes_the_report_of_a_3d_vae_gan_with_photos_and_curves(run_dir, tmp_path):
    ikea_photo = sorted(glob.glob(os.path.join(IKEA, "*.jpg")))[3]
    result = run_module("keras_vaegan.report", f"--model={run_dir / 'model.keras'}", f"--out={tmp_path}",
                        f"--data_dir={run_dir / 'data'}", f"--images={ikea_photo}", "--samples=4",
                        "--interpolation_steps=3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {tmp_path / 'index.html'}"
    page = (tmp_path / "index.html").read_text()
    assert "3D-VAE-GAN at step 0" in page
    assert page.count('<img class="photo"') == 4  # three photos of the records, one file
    assert len(embedded_shapes(page)) == 4 + 3 + 4 and os.path.isfile(tmp_path / "curves.png")


def test_cli_skips_reconstructions_of_a_3d_gan_and_a_run_without_logs(tmp_path, run_report):
    model = save_tiny_model(str(tmp_path), "gan")
    ikea_photo = sorted(glob.glob(os.path.join(IKEA, "*.jpg")))[0]
    result = run_report(f"--model={model}", f"--out={tmp_path / 'report'}", f"--images={ikea_photo}",
                        "--samples=2", "--interpolation_steps=2")
    assert result.returncode == 0, result.stderr
    assert "this model has no encoder" in result.stderr and "no training logs" in result.stderr
    page = (tmp_path / "report" / "index.html").read_text()
    assert "3D-GAN at step 0" in page and "this model has no encoder" in page and "no training logs" in page
    assert len(embedded_shapes(page)) == 4


@pytest.mark.parametrize(
    "args, fragment",
    [
        ([], "--model is required"),
        (["--model=/nonexistent/model.keras", "--out=x"], "/nonexistent/model.keras: no such file"),
        (["--model=m", "--out=x", "--samples=0"], "--samples: 0 is not in [1, 64]"),
        (["--model=m", "--out=x", "--interpolation_steps=1"], "--interpolation_steps"),
        (["--model=m", "--out=x", "--bogus"], "--bogus: unknown flag"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args, fragment, run_report):
    result = run_report(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0]


def test_bad_photo_records_and_model_file_are_one_line(run_dir, tmp_path, run_report):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    result = run_report(f"--model={run_dir / 'model.keras'}", f"--out={tmp_path / 'r'}", f"--images={broken}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: --images: {broken}")
    result = run_report(f"--model={run_dir / 'model.keras'}", f"--out={tmp_path / 'r'}", f"--data_dir={tmp_path / 'no'}")
    assert result.returncode == 2 and str(tmp_path / "no") in result.stderr.strip().splitlines()[-1]
    not_a_model = tmp_path / "model.keras"
    not_a_model.write_text("text")
    result = run_report(f"--model={not_a_model}", f"--out={tmp_path / 'r'}")
    assert result.returncode == 2 and "not a .keras file" in result.stderr.strip().splitlines()[-1]
    assert not os.path.exists(tmp_path / "r")

"""python -m export: SavedModel signatures, TFLite fp32/fp16/int8 files, their parity report and bad input.

One 3D-VAE-GAN (32^3, 32x32 photos, latent 32) is exported once per module into
all formats, calibrated and checked on records holding real IKEA photos.
"""

import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from export import __main__ as export_cli
from export.edge import EdgeModel
from export import exporter
from export.exporter import export_model
from export.report import markdown
from keras_vaegan.config import ModelConfig, TrainConfig
from keras_vaegan.data import decode_image, encode_example
from keras_vaegan.models import build_model

IKEA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "ikea-sample", "Images")
LATENT = 32
SIGNATURES = {"generate", "sample", "reconstruct", "reconstruct_pixels", "discriminate"}
TFLITE_FILES = {f"{kind}_{q}.tflite" for kind in ("generator", "encoder", "reconstruct") for q in ("fp32", "fp16", "int8")}


def ikea_photos(count):
    return [open(path, "rb").read() for path in sorted(glob.glob(os.path.join(IKEA, "*.jpg")))[:count]]


def trained_looking(model, seed=0):
    """Spreads the generator's probabilities over (0, 1), as after training, instead of hugging 0.5."""
    rng = np.random.default_rng(seed)
    last = model.generator.blocks[-1].conv
    last.kernel.assign(last.kernel.numpy() * 20)
    last.bias.assign(rng.normal(0, 1, last.bias.shape).astype("float32"))
    return model


def save_model(folder, model_type="vaegan", prior="normal"):
    config = ModelConfig(model_type=model_type, resolution=32, latent_dim=LATENT, image_size=32)
    model = trained_looking(build_model(config, TrainConfig(batch_size=2, latent_prior=prior)))
    path = os.path.join(folder, "model.keras")
    model.save(path)
    return path


def write_records(folder, photos):
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(os.path.join(folder, "train.tfrecord")) as writer:
        for i, photo in enumerate(photos):
            voxels = rng.random((32, 32, 32)) < 0.2
            writer.write(encode_example(voxels, photo, "chair", 2, f"ikea/{i}"))
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model path, data folder, export folder, report) of one full export."""
    root = tmp_path_factory.mktemp("export")
    model_path = save_model(str(root))
    data_dir = write_records(str(root / "data"), ikea_photos(12))
    out = str(root / "export")
    report = export_model(model_path, out, ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8"),
                          data_dir=data_dir, calibration_samples=8, parity_samples=4)
    return model_path, data_dir, out, report


def entries(report, export_format):
    return [entry for entry in report["files"] if entry["format"] == export_format]


def test_every_format_is_written_with_its_report(exported):
    _, _, out, report = exported
    names = set(os.listdir(out))
    assert TFLITE_FILES <= names
    assert {"saved_model", "export_report.json", "export_report.md"} <= names
    assert not [n for n in os.listdir(os.path.dirname(out)) if ".tmp-" in n or ".old-" in n]
    with open(os.path.join(out, "export_report.json")) as handle:
        assert json.load(handle) == json.loads(json.dumps(report))
    with open(os.path.join(out, "export_report.md")) as handle:
        assert handle.read() == markdown(report)
    assert {entry["file"] for entry in report["files"]} >= TFLITE_FILES
    assert {entry["kind"] for entry in entries(report, "saved_model")} == SIGNATURES
    for entry in report["files"]:
        path = os.path.join(out, entry["file"].split(":")[0])
        assert entry["size_bytes"] > 0 and os.path.exists(path)


def test_float32_outputs_match_keras_within_1e5(exported):
    report = exported[3]
    checked = entries(report, "saved_model") + entries(report, "tflite_fp32")
    assert len(checked) == 8
    for entry in checked:
        assert entry["max_abs_diff"] <= 1e-5, entry["file"]
        assert entry["target"]["met"], entry["file"]
        if entry["iou"] is not None:
            assert entry["iou"] >= 0.999, entry["file"]


def test_float16_iou_and_int8_iou_are_reported(exported):
    report = exported[3]
    for entry in entries(report, "tflite_fp16"):
        if entry["kind"] != "encoder":
            assert entry["iou"] >= 0.99, entry["file"]
    int8 = entries(report, "tflite_int8")
    assert {entry["kind"] for entry in int8} == {"generator", "encoder", "reconstruct"}
    for entry in int8:
        assert entry["iou"] is None if entry["kind"] == "encoder" else 0 <= entry["iou"] <= 1
        assert entry["max_abs_diff"] > 0
    assert report["targets_met"]
    assert "training photos" in report["calibration"]


def test_op_types_are_listed_and_int8_files_name_their_float_ops(exported):
    _, _, out, report = exported
    for entry in entries(report, "tflite_fp32") + entries(report, "tflite_fp16"):
        assert "CONV_3D_TRANSPOSE" not in entry["ops"]  # the XNNPACK-friendly generator
        assert "SHAPE" not in entry["ops"]  # a fixed batch of one
        assert entry["xnnpack_whole_graph"] is True, entry["file"]
    generator = {e["kind"]: e for e in entries(report, "tflite_fp32")}["generator"]
    assert "TRANSPOSE_CONV" in generator["ops"]
    for entry in entries(report, "tflite_int8"):
        assert "int8" in {dtype for op in entry["ops"].values() for dtype in op["dtypes"]}, entry["file"]
        assert entry["float_ops"] == [
            name for name, op in entry["ops"].items() if "float32" in op["dtypes"] and "QUANTIZE" not in name
        ]
    text = open(os.path.join(out, "export_report.md")).read()
    assert "in float32:" in text and "TRANSPOSE_CONV" in text


def test_tflite_files_declare_their_kind_and_batch_of_one(exported):
    _, _, out, _ = exported
    for name in TFLITE_FILES:
        model = EdgeModel(os.path.join(out, name))
        assert model.kind == name.split("_")[0]
        assert model.input_shape == ((LATENT,) if model.kind == "generator" else (32, 32, 3))


def _saved_model_cli(*args):
    command = [os.path.join(os.path.dirname(sys.executable), "saved_model_cli"), *args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout


@pytest.mark.large  # two processes of TensorFlow's own CLI; the signatures are checked in process below
def test_saved_model_cli_shows_the_signatures_and_runs_generate(exported, tmp_path):
    model_path, _, out, _ = exported
    saved = os.path.join(out, "saved_model")
    shown = _saved_model_cli("show", "--dir", saved, "--all")
    for name in SIGNATURES | {"serving_default"}:
        assert f"signature_def['{name}']" in shown
    for key in ("inputs['z']", "inputs['batch_size']", "inputs['seed']", "inputs['images']", "inputs['pixels']",
                "inputs['voxels']", "outputs['occupancy']", "outputs['probability']", "outputs['features']"):
        assert key in shown
    assert "dtype: DT_STRING" in shown
    z = np.linspace(-2, 2, 2 * LATENT, dtype=np.float32).reshape(2, LATENT)
    np.save(tmp_path / "z.npy", z)
    _saved_model_cli("run", "--dir", saved, "--tag_set", "serve", "--signature_def", "generate",
                     "--inputs", f"z={tmp_path / 'z.npy'}", "--outdir", str(tmp_path))
    got = np.load(tmp_path / "occupancy.npy")
    model = keras.saving.load_model(model_path)
    np.testing.assert_allclose(got, model.generator(z, training=False), atol=1e-6)


def test_every_signature_is_served_and_generate_is_the_keras_generator(exported):
    model_path, _, out, _ = exported
    loaded = tf.saved_model.load(os.path.join(out, "saved_model"))
    assert set(loaded.signatures) == SIGNATURES | {"serving_default"}
    z = np.linspace(-2, 2, 2 * LATENT, dtype=np.float32).reshape(2, LATENT)
    got = loaded.signatures["generate"](z=tf.constant(z))["occupancy"]
    model = keras.saving.load_model(model_path)
    np.testing.assert_allclose(got, model.generator(z, training=False), atol=1e-6)


def test_reconstruct_reads_jpeg_bytes_and_sample_is_seeded(exported):
    model_path, _, out, _ = exported
    loaded = tf.saved_model.load(os.path.join(out, "saved_model"))
    model = keras.saving.load_model(model_path)
    photos = ikea_photos(2)
    got = loaded.signatures["reconstruct"](images=tf.constant(photos))
    pixels = tf.stack([decode_image(photo, 32) for photo in photos])
    np.testing.assert_allclose(got["occupancy"], model.reconstruct(pixels), atol=1e-6)
    first = loaded.signatures["sample"](batch_size=tf.constant(3), seed=tf.constant(7, tf.int64))
    again = loaded.signatures["sample"](batch_size=tf.constant(3), seed=tf.constant(7, tf.int64))
    other = loaded.signatures["sample"](batch_size=tf.constant(3), seed=tf.constant(8, tf.int64))
    np.testing.assert_array_equal(first["z"], again["z"])
    assert not np.array_equal(first["z"], other["z"])
    assert first["occupancy"].shape == (3, 32, 32, 32, 1)
    judged = loaded.signatures["discriminate"](voxels=first["occupancy"])
    assert judged["probability"].shape == (3, 1) and judged["features"].shape == (3, 15 * 32)
    np.testing.assert_allclose(judged["probability"], tf.sigmoid(judged["logit"]))


def test_a_3d_gan_exports_its_generator_calibrated_on_prior_samples(tmp_path, monkeypatch):
    model_path = save_model(str(tmp_path), model_type="gan", prior="uniform")
    out = str(tmp_path / "export")
    report = export_model(model_path, out, ("tflite_int8",), calibration_samples=4, parity_samples=2)
    assert sorted(os.listdir(out)) == ["export_report.json", "export_report.md", "generator_int8.tflite"]
    assert report["model_type"] == "3D-GAN" and report["latent_prior"] == "uniform"
    assert "prior z" in report["calibration"]

    # A failure half-way leaves the earlier export as it was, and no staging folder.
    before = {name: os.path.getmtime(os.path.join(out, name)) for name in os.listdir(out)}

    def broken_convert(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exporter.tflite, "convert", broken_convert)
    with pytest.raises(OSError):
        export_model(model_path, out, ("tflite_fp32",), parity_samples=1)
    assert {name: os.path.getmtime(os.path.join(out, name)) for name in os.listdir(out)} == before
    assert sorted(os.listdir(tmp_path)) == ["export", "model.keras"]
    monkeypatch.undo()
    # What exports killed between their renames leave: removed if their process is gone, kept while it runs.
    gone = subprocess.Popen(["true"])
    gone.wait()
    leftovers = [f".export.tmp-{gone.pid}-x1", f"export.old-{gone.pid}", f".export.tmp-{os.getpid()}-x2"]
    for name in leftovers:
        os.makedirs(tmp_path / name / "saved_model")
    report = export_model(model_path, out, ("tflite_fp32",), parity_samples=2)
    assert sorted(os.listdir(out)) == ["export_report.json", "export_report.md", "generator_fp32.tflite"]
    assert report["files"][0]["max_abs_diff"] <= 1e-5
    assert sorted(os.listdir(tmp_path)) == sorted(["export", "model.keras", leftovers[2]])


def _not_ours(folder):
    path = os.path.join(folder, "sequential.keras")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]).save(path)
    return path


def _corrupt(folder):
    path = os.path.join(folder, "corrupt.keras")
    with open(path, "wb") as handle:
        handle.write(b"not a zip archive")
    return path


def _truncated(folder, model_path):
    path = os.path.join(folder, "truncated.keras")
    with open(model_path, "rb") as source, open(path, "wb") as handle:
        handle.write(source.read()[:5000])
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "missing.keras: no such file"),
        ("corrupt", "corrupt.keras: not a .keras file"),
        ("truncated", "truncated.keras: not a .keras file"),
        ("not_ours", "sequential.keras: holds a Sequential, not a keras-vaegan 3D-GAN or 3D-VAE-GAN"),
        ("bad_format", "--formats: onnx (choose from"),
        ("int8_without_data", "--data_dir: tflite_int8 of a 3D-VAE-GAN calibrates on training photos"),
        ("out_under_a_file", "cannot be written"),
        ("out_holds_other_files", "holds other files"),
        ("no_records", "holds no non-empty TFRecord files"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case, expected, exported, tmp_path, capsys):
    model_path, _, _, _ = exported
    folder = str(tmp_path)
    out = os.path.join(folder, "out")
    args = {"formats": "tflite_fp32"}
    if case == "missing":
        model_path = os.path.join(folder, "missing.keras")
    elif case == "corrupt":
        model_path = _corrupt(folder)
    elif case == "truncated":
        model_path = _truncated(folder, model_path)
    elif case == "not_ours":
        model_path = _not_ours(folder)
    elif case == "bad_format":
        args["formats"] = "tflite_fp32,onnx"
    elif case == "int8_without_data":
        args["formats"] = "tflite_int8"
    elif case == "out_under_a_file":
        open(os.path.join(folder, "file"), "w").close()
        out = os.path.join(folder, "file", "out")
    elif case == "out_holds_other_files":
        os.makedirs(out)
        open(os.path.join(out, "notes.txt"), "w").close()
    elif case == "no_records":
        os.makedirs(os.path.join(folder, "empty"))
        args.update(formats="tflite_int8", data_dir=os.path.join(folder, "empty"))
    before = sorted(os.listdir(folder))
    argv = ["export", f"--model={model_path}", f"--out={out}"] + [f"--{k}={v}" for k, v in args.items()]
    with pytest.raises(SystemExit) as exit_info:
        export_cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert sorted(os.listdir(folder)) == before

"""python -m keras_vaegan.evaluate: every task end to end on the real files in ../shared/data, and bad inputs.

The command runs in this process (`in_process`); test_commands.py runs it as a program."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import distinct, figure_cells, foreground_share, in_process, save_tiny_model, the_error
from keras_vaegan.data import encode_example
from keras_vaegan.evaluation import ikea_data
from vaegan_utils.readers import read_voxel_array

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IKEA = os.path.join(ROOT, "..", "shared", "data", "ikea-sample")
CHAIRS = os.path.join(ROOT, "..", "shared", "data", "modelnet10-chair-32.npy.gz")


@pytest.fixture
def evaluate(capsys, monkeypatch):
    """Runs the evaluate command on (args...) from the repository folder; a CompletedProcess."""
    from keras_vaegan import evaluate as command

    monkeypatch.chdir(ROOT)
    return in_process(command.main, command.FLAGS, capsys)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    os.makedirs(root / "gan")
    return {"vaegan": save_tiny_model(str(root), "vaegan"), "gan": save_tiny_model(str(root / "gan"), "gan")}


@pytest.fixture(scope="module")
def ikea_shapes(tmp_path_factory):
    """The real IKEA models of three classes as records at their native 20^3: train/ and test/ splits."""
    root = tmp_path_factory.mktemp("ikea-shapes")
    bench = ikea_data.load_benchmark(IKEA)
    by_class = {}
    for model_id in sorted(bench.library):
        by_class.setdefault(bench.library_classes[model_id], []).append(model_id)
    for split in ("train", "test", "one_class"):
        os.makedirs(root / split)
    writers = {split: tf.io.TFRecordWriter(str(root / split / f"{split}.tfrecord"))
               for split in ("train", "test", "one_class")}
    for name in ("bed", "chair", "sofa"):
        for i, model_id in enumerate(by_class[name][:12]):
            record = encode_example(bench.library[model_id], class_name=name, source_id=model_id)
            writers["train" if i < 8 else "test"].write(record)
            if name == "chair":
                writers["one_class"].write(record)
    for writer in writers.values():
        writer.close()
    return root


def test_ikea_scores_the_real_photos_against_both_reference_predictors(models, tmp_path, evaluate):
    result = evaluate("ikea", f"--model={models['vaegan']}", f"--data={IKEA}", f"--out={tmp_path}",
                      "--best_transform", "--batch_size=16")
    assert result.returncode == 0, result.stderr
    assert "resampled to the ground truth's 20^3" in result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["photos"] == 60 and metrics["library_models"] == 225 and metrics["skipped"] == []
    ap = metrics["average_precision"]
    assert list(ap) == ["model", "model, best of 8 turns/mirrors", "mean shape (all classes)",
                        "mean shape (all classes), best of 8 turns/mirrors", "class mean shape (oracle on class)",
                        "class mean shape (oracle on class), best of 8 turns/mirrors"]
    assert set(ap["model"]) == {"bed", "bookcase", "chair", "desk", "sofa", "table", "mean"}
    assert all(0 <= value <= 1 for table in ap.values() for value in table.values())
    for predictor in ("model", "mean shape (all classes)", "class mean shape (oracle on class)"):
        assert all(ap[f"{predictor}, best of 8 turns/mirrors"][c] >= ap[predictor][c] for c in ap["model"])
    assert ap["mean shape (all classes)"]["mean"] == pytest.approx(0.28431, abs=1e-5)
    assert ap["class mean shape (oracle on class), best of 8 turns/mirrors"]["mean"] == pytest.approx(0.49059, abs=1e-5)
    assert len(metrics["per_photo"]) == 60 and set(metrics["iou"]) == {"IoU at 0.3", "IoU at 0.4", "IoU at 0.5"}
    table = (tmp_path / "table.md").read_text()
    assert "| class mean shape (oracle on class) |" in table and table in result.stdout
    rows = figure_cells(tmp_path / "ikea_examples.png", 128)  # per class its best and worst photo
    assert 6 <= len(rows) <= 12 and {len(row) for row in rows} == {3}
    photos, _, truths = zip(*rows)
    assert distinct(photos) == len(rows) and min(map(foreground_share, photos)) > 0.2  # a wide photo fills a band
    assert min(map(foreground_share, truths)) > 0.05  # a rendered piece of furniture in every ground-truth cell


def test_ikea_scores_the_mean_of_posterior_draws(models, tmp_path, evaluate):
    from keras_vaegan.evaluation import ikea
    from keras_vaegan.model_file import load_trained_model
    from vaegan_utils.images import resize_with_pad

    result = evaluate("ikea", f"--model={models['vaegan']}", f"--data={IKEA}", f"--out={tmp_path}",
                      "--posterior_samples=4", "--seed=3", "--batch_size=32")
    assert result.returncode == 0, result.stderr
    assert "each prediction the mean of 4 draws from the posterior" in (tmp_path / "table.md").read_text()
    model = load_trained_model(models["vaegan"])
    photos = ikea_data.load_benchmark(IKEA).photos[:4]
    pixels = np.asarray([resize_with_pad(photo.pixels, model.image_size) for photo in photos], np.float32)
    predictions = np.asarray(model.reconstruct(pixels, samples=4, seed=3))[..., 0]
    rows = json.loads((tmp_path / "metrics.json").read_text())["per_photo"][:4]
    for row, photo, prediction in zip(rows, photos, predictions):
        assert row["ap"] == pytest.approx(ikea.average_precision(ikea.resample_occupancy(prediction, 20), photo.truth),
                                          abs=1e-4)
    assert the_error(evaluate("ikea", f"--model={models['vaegan']}", f"--data={IKEA}", f"--out={tmp_path / 'o'}",
                              "--posterior_samples=-1")) == "error: --posterior_samples: -1 is not in [0, 1000]"
    error = the_error(evaluate("generation", f"--model={models['gan']}", f"--data={IKEA}", f"--out={tmp_path / 'o'}",
                               f"--train_data={IKEA}", "--posterior_samples=2"))
    assert error == ("error: --posterior_samples: only ikea and renders read pictures through the posterior, "
                     "not generation")


def test_ikea_lists_skips_and_counts_photos_without_ground_truth(models, tmp_path, evaluate):
    root = tmp_path / "ikea"
    shutil.copytree(IKEA, root)
    model = (root / "Lists" / "ModelID.txt").read_text().split()[0]
    os.remove(root / "Voxels" / f"{model}.mat")
    result = evaluate("ikea", f"--model={models['vaegan']}", f"--data={root}", f"--out={tmp_path / 'out'}",
                      "--batch_size=16")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    lost = (root / "Lists" / "ModelID.txt").read_text().split().count(model)
    assert metrics["photos"] == 60 - lost and len(metrics["skipped"]) == lost + 1  # the photos and the model
    assert result.stderr.count("evaluate: skipped ") == lost + 1


def test_ikea_scores_photos_of_held_out_models_on_their_own(models, tmp_path, evaluate):
    models_of_photos = (open(os.path.join(IKEA, "Lists", "ModelID.txt")).read().split())
    heldout = tmp_path / "heldout_models.txt"
    heldout.write_text(f"model{int(models_of_photos[0]):04d}\nmodel0001\n")
    result = evaluate("ikea", f"--model={models['vaegan']}", f"--data={IKEA}", f"--out={tmp_path / 'out'}",
                      f"--heldout_models={heldout}", "--batch_size=16")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    count = models_of_photos.count(models_of_photos[0])
    assert f"model, photos of held-out models ({count})" in metrics["average_precision"]
    assert sum(row["heldout_model"] for row in metrics["per_photo"]) == count
    heldout.write_text("model9999\n")
    error = the_error(evaluate("ikea", f"--model={models['vaegan']}", f"--data={IKEA}", f"--out={tmp_path / 'o'}",
                               f"--heldout_models={heldout}"))
    assert "1 ids are not models of" in error and "model9999" in error


def test_ikea_refuses_a_single_class_and_a_3d_gan(models, tmp_path, evaluate):
    root = tmp_path / "ikea"
    shutil.copytree(IKEA, root)
    lists = root / "Lists"
    classes = (lists / "all_obj_class.txt").read_text().split()
    pairs = [(image, model) for image, model in zip((lists / "Images.txt").read_text().split(),
                                                    (lists / "ModelID.txt").read_text().split())
             if classes[int(model) - 1] == "chair"]
    (lists / "Images.txt").write_text("".join(f"{image}\n" for image, _ in pairs))
    (lists / "ModelID.txt").write_text("".join(f"{model}\n" for _, model in pairs))
    error = the_error(evaluate("ikea", f"--model={models['vaegan']}", f"--data={root}", f"--out={tmp_path / 'o'}"))
    assert "of 1 class(es)" in error and "at least two classes" in error
    error = the_error(evaluate("ikea", f"--model={models['gan']}", f"--data={IKEA}", f"--out={tmp_path / 'o'}"))
    assert "is a 3D-GAN" in error
    error = the_error(evaluate("ikea", f"--model={models['vaegan']}", f"--data={tmp_path}", f"--out={tmp_path / 'o'}"))
    assert "not an IKEA dataset" in error
    assert not os.path.exists(tmp_path / "o")


def test_ikea_ensemble_scores_the_mean_of_its_members_predictions(models, tmp_path, evaluate):
    from keras_vaegan.evaluation import ikea
    from keras_vaegan.model_file import load_trained_model
    from vaegan_utils.images import resize_with_pad

    other = load_trained_model(models["vaegan"])
    last = other.generator.blocks[-1].conv
    kernel = last.kernel.numpy()
    noise = np.random.default_rng(0).normal(0, kernel.std(), kernel.shape)
    last.kernel.assign(kernel + noise.astype(kernel.dtype))  # a second member that disagrees with the first
    other.save(str(tmp_path / "other.keras"))
    result = evaluate("ikea", f"--model={models['vaegan']}", f"--ensemble={tmp_path / 'other.keras'}",
                      f"--data={IKEA}", f"--out={tmp_path / 'out'}", "--batch_size=16")
    assert result.returncode == 0, result.stderr
    assert "each prediction is the mean of 2 models' predictions" in result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["ensemble"] == [str(tmp_path / "other.keras")]
    assert "(model: the mean of 2 models' predictions)" in (tmp_path / "out" / "table.md").read_text()
    # The CLI's first batch of 16, predicted as it is: oneDNN's sums depend on the batch size, and an
    # untrained model's near-tied occupancies let such differences move the AP.
    photos = ikea_data.load_benchmark(IKEA).photos[:16]
    pixels = np.stack([resize_with_pad(photo.pixels, 32) for photo in photos]).astype(np.float32)
    members = [load_trained_model(models["vaegan"]), other]
    mean = np.mean([np.asarray(member.reconstruct(pixels), np.float64)[..., 0] for member in members], axis=0)
    alone = np.asarray(members[0].reconstruct(pixels))[..., 0]
    apart = []
    for photo, row, prediction, single in zip(photos, metrics["per_photo"], mean, alone):
        assert row["ap"] == pytest.approx(ikea.average_precision(ikea.resample_occupancy(prediction, 20), photo.truth),
                                          abs=1e-4)
        apart.append(abs(row["ap"] - ikea.average_precision(ikea.resample_occupancy(single, 20), photo.truth)))
    # The first member alone scores otherwise: on some photo (not on every one: an untrained model's
    # occupancies are near 0.5, and the mean can rank a photo's voxels as the first member does).
    assert max(apart) > 1e-3, apart


def test_ensemble_refuses_a_3d_gan_other_sizes_and_other_tasks(models, tmp_path, evaluate):
    from keras_vaegan.config import ModelConfig, TrainConfig
    from keras_vaegan.models import build_model

    larger = build_model(ModelConfig(model_type="vaegan", resolution=32, latent_dim=16, image_size=64),
                        TrainConfig(batch_size=2))
    larger.save(str(tmp_path / "larger.keras"))
    common = (f"--model={models['vaegan']}", f"--data={IKEA}", f"--out={tmp_path / 'o'}")
    error = the_error(evaluate("ikea", *common, f"--ensemble={tmp_path / 'larger.keras'}"))
    assert error == (f"error: --ensemble: {tmp_path / 'larger.keras'} makes 32^3 shapes from 64x64 pictures, --model "
                     "32^3 from 32x32; the members of an ensemble must agree")
    assert "is a 3D-GAN" in the_error(evaluate("ikea", *common, f"--ensemble={models['gan']}"))
    error = the_error(evaluate("generation", *common, f"--ensemble={models['vaegan']}"))
    assert error == "error: --ensemble: only ikea and renders average several models' predictions, not generation"
    assert not os.path.exists(tmp_path / "o")


def test_ensemble_of_checkpoints_restores_each_into_the_models_architecture(trained_vaegan_run, tmp_path, evaluate):
    from keras_vaegan.evaluation import ikea
    from keras_vaegan.model_file import load_trained_model
    from vaegan_utils.images import resize_with_pad

    model_path = os.path.join(trained_vaegan_run, "model.keras")
    checkpoints = os.path.join(trained_vaegan_run, "checkpoints")
    result = evaluate("ikea", f"--model={model_path}", f"--ensemble={checkpoints}", f"--data={IKEA}",
                      f"--out={tmp_path / 'out'}", "--batch_size=16")
    assert result.returncode == 0, result.stderr
    steps = [os.path.join(checkpoints, "ckpt-2"), os.path.join(checkpoints, "ckpt-4")]
    assert all(f"restoring {prefix}" in result.stderr for prefix in steps)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["ensemble"] == steps
    assert "(model: the mean of 3 models' predictions)" in (tmp_path / "out" / "table.md").read_text()
    photos = ikea_data.load_benchmark(IKEA).photos[:4]
    pixels = np.stack([resize_with_pad(photo.pixels, 32) for photo in photos]).astype(np.float32)
    members = [load_trained_model(model_path) for _ in range(3)]
    for member, prefix in zip(members[1:], steps):
        tf.train.Checkpoint(model=member).restore(prefix).expect_partial()
    assert int(members[1].step.value) == 2 and int(members[2].step.value) == 4
    predictions = [np.asarray(member.reconstruct(pixels))[..., 0] for member in members]
    assert np.abs(predictions[1] - predictions[0]).max() > 0.01  # step 2 predicts otherwise than the final model
    for photo, row, prediction in zip(photos, metrics["per_photo"], np.mean(predictions, axis=0)):
        assert row["ap"] == pytest.approx(ikea.average_precision(ikea.resample_occupancy(prediction, 20), photo.truth),
                                          abs=1e-4)


def test_ensemble_refuses_checkpoints_of_another_model_and_empty_folders(models, trained_vaegan_run, tmp_path,
                                                                         evaluate):
    from keras_vaegan.model_file import load_trained_model

    tf.train.Checkpoint(model=load_trained_model(models["gan"])).write(str(tmp_path / "gan" / "ckpt-1"))
    os.makedirs(tmp_path / "empty")
    model = os.path.join(trained_vaegan_run, "model.keras")
    common = (f"--model={model}", f"--data={IKEA}", f"--out={tmp_path / 'o'}")
    error = the_error(evaluate("ikea", *common, f"--ensemble={tmp_path / 'gan' / 'ckpt-1'}"))
    assert error.startswith(f"error: --ensemble: {tmp_path / 'gan' / 'ckpt-1'}: its weights do not fit --model ")
    error = the_error(evaluate("ikea", *common, f"--ensemble={tmp_path / 'empty'}"))
    assert error == (f"error: --ensemble: {tmp_path / 'empty'}: a folder without training checkpoints "
                     "(no ckpt-N.index in it)")
    missing = os.path.join(trained_vaegan_run, "checkpoints", "ckpt-3")
    assert the_error(evaluate("ikea", *common, f"--ensemble={missing}")) == f"error: {missing}: no such file"
    assert not os.path.exists(tmp_path / "o")


def test_training_checkpoints_are_ordered_by_step(tmp_path):
    from keras_vaegan.model_file import training_checkpoints

    for step in (10, 9, 250):
        (tmp_path / f"ckpt-{step}.index").write_bytes(b"")
    (tmp_path / "checkpoint").write_text("")
    assert training_checkpoints(str(tmp_path)) == [str(tmp_path / f"ckpt-{step}") for step in (9, 10, 250)]
    assert training_checkpoints(str(tmp_path / "ckpt-9")) == [str(tmp_path / "ckpt-9")]
    assert training_checkpoints(str(tmp_path / "model.keras")) is None


@pytest.fixture(scope="module")
def heldout_renders(tmp_path_factory):
    """Renders of the held-out real IKEA models (one view each, 16x16 pictures) at 20^3: a validation set."""
    from data_tools import ikea_renders

    out = tmp_path_factory.mktemp("heldout-renders")
    ikea_renders.write_ikea_renders(IKEA, str(out), resolution=32, views_per_model=1, image_size=16, num_shards=2,
                                    split="heldout")
    return out


def test_renders_scores_pictures_against_their_shapes_and_the_mean_shape(models, heldout_renders, tmp_path, evaluate):
    result = evaluate("renders", f"--model={models['vaegan']}", f"--data={heldout_renders}", f"--out={tmp_path}",
                      "--max_records=20", "--batch_size=16")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    heldout = (heldout_renders / "heldout_models.txt").read_text().split()
    assert metrics["records"] == len(heldout) and metrics["scored"] == len(metrics["per_record"]) == 20
    scored = {row["source_id"].split("/")[2] for row in metrics["per_record"]}
    assert len(scored) == 20 and scored <= set(heldout)  # 20 different held-out models, one view each
    ap = metrics["average_precision"]
    assert set(ap) == {"model", "mean shape of the other records"}
    for row in metrics["per_record"]:
        assert 0 < row["ap"] <= 1 and 0 < row["mean_shape_ap"] <= 1 and 0 <= row["iou@0.5"] <= 1
    assert ap["model"]["mean"] == pytest.approx(
        sum(v for k, v in ap["model"].items() if k != "mean") / (len(ap["model"]) - 1))
    assert "| model |" in (tmp_path / "table.md").read_text()
    rows = figure_cells(tmp_path / "renders_examples.png", 128)  # per class its best and worst picture
    assert len({row["class"] for row in metrics["per_record"]}) <= len(rows) and {len(row) for row in rows} == {3}
    pictures, _, truths = zip(*rows)
    assert distinct(pictures) == len(rows) and min(map(foreground_share, pictures)) > 0.9
    assert min(map(foreground_share, truths)) > 0.05
    again = evaluate("renders", f"--model={models['vaegan']}", f"--data={heldout_renders}",
                     f"--out={tmp_path / 'all'}", "--max_records=0")
    assert json.loads((tmp_path / "all" / "metrics.json").read_text())["scored"] == len(heldout), again.stderr
    twice = evaluate("renders", f"--model={models['vaegan']}", f"--ensemble={models['vaegan']}",
                     f"--data={heldout_renders}", f"--out={tmp_path / 'twice'}", "--max_records=20", "--batch_size=16")
    rows = json.loads((tmp_path / "twice" / "metrics.json").read_text())["per_record"]
    assert [row["ap"] for row in rows] == [row["ap"] for row in metrics["per_record"]], twice.stderr


def test_renders_refuses_records_without_pictures_and_a_3d_gan(models, ikea_shapes, heldout_renders, tmp_path,
                                                                evaluate):
    error = the_error(evaluate("renders", f"--model={models['vaegan']}", f"--data={ikea_shapes / 'train'}",
                               f"--out={tmp_path / 'o'}"))
    assert error.startswith(f"error: --data: {ikea_shapes / 'train' / 'train.tfrecord'}: record 0")
    assert "holds no picture" in error
    error = the_error(evaluate("renders", f"--model={models['gan']}", f"--data={heldout_renders}",
                               f"--out={tmp_path / 'o'}"))
    assert "is a 3D-GAN" in error
    undecodable = tmp_path / "undecodable"
    undecodable.mkdir()
    with tf.io.TFRecordWriter(str(undecodable / "a.tfrecord")) as writer:
        writer.write(encode_example(read_voxel_array(CHAIRS)[0] > 0.5, image=b"not a picture", class_name="chair"))
    error = the_error(evaluate("renders", f"--model={models['vaegan']}", f"--data={undecodable}",
                               f"--out={tmp_path / 'o'}"))
    assert f"{undecodable / 'a.tfrecord'}: record 0: its picture does not decode" in error
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    (tmp_path / "bad.tfrecord").write_bytes(b"\x00" * 40)
    error = the_error(evaluate("renders", f"--model={models['vaegan']}", f"--data={tmp_path}",
                               f"--out={tmp_path / 'o'}"))
    assert f"{tmp_path / 'bad.tfrecord'}: record 0 cannot be read" in error
    assert not os.path.exists(tmp_path / "o")


@pytest.fixture(scope="module")
def training_renders(tmp_path_factory):
    """Renders of the real IKEA library models kept for training (one view each, 16x16 pictures)."""
    from data_tools import ikea_renders

    out = tmp_path_factory.mktemp("training-renders")
    ikea_renders.write_ikea_renders(IKEA, str(out), resolution=32, views_per_model=1, image_size=16, num_shards=1,
                                    synthetic_per_class=0)
    return out


def test_classes_probes_the_code_on_training_and_held_out_renders_and_the_photos(models, training_renders,
                                                                                  heldout_renders, tmp_path, evaluate):
    from keras_vaegan.evaluation.records import load_renders

    result = evaluate("classes", f"--model={models['vaegan']}", f"--train_data={training_renders}",
                      f"--data={heldout_renders}", f"--photos={IKEA}", f"--out={tmp_path}", "--batch_size=16")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    training = load_renders(str(training_renders), 32, 32).class_names
    classes = sorted(set(training))
    assert metrics["classes"] == classes and {"bed", "chair", "table"} < set(classes)
    heldout = len((heldout_renders / "heldout_models.txt").read_text().split())
    photo_classes = [photo.class_name for photo in ikea_data.load_benchmark(IKEA).photos]
    for results in (metrics["sets"], metrics["untrained_reference"]):
        assert [(name, row["pictures"]) for name, row in results.items()] == [
            ("training", len(training)), ("held-out", heldout), ("photos", len(photo_classes))]
        for row in results.values():
            assert np.sum(row["confusion"]) == row["pictures"]
            assert row["accuracy"] == pytest.approx(np.trace(row["confusion"]) / row["pictures"])
    # the reference that sees no picture: always the most frequent training class
    most = max(classes, key=training.count)
    assert metrics["sets"]["photos"]["majority_accuracy"] == pytest.approx(photo_classes.count(most) / len(photo_classes))
    assert metrics["sets"]["training"]["majority_accuracy"] == pytest.approx(training.count(most) / len(training))
    table = (tmp_path / "table.md").read_text()
    assert "| training (cross-validated) | " in table and f"| photos | {len(photo_classes)} | " in table
    picture = np.asarray(Image.open(tmp_path / "class_confusion.png").convert("RGB"))
    label_width = 8 + 7 * max(map(len, classes))
    cells = len(classes) * 40
    assert picture.shape == (40 + label_width + cells + 10, label_width + cells + 10, 3)  # the photos' matrix


def test_classes_refuses_what_it_cannot_probe(models, training_renders, heldout_renders, tmp_path, evaluate):
    common = (f"--model={models['vaegan']}", f"--out={tmp_path / 'o'}")
    one_class = tmp_path / "one-class"
    one_class.mkdir()
    chairs = read_voxel_array(CHAIRS)[:3] > 0.5
    picture = (training_renders / "preview.png").read_bytes()
    with tf.io.TFRecordWriter(str(one_class / "a.tfrecord")) as writer:
        for grid in chairs:
            writer.write(encode_example(grid, image=picture, class_name="chair"))
    error = the_error(evaluate("classes", *common, f"--train_data={one_class}", f"--data={heldout_renders}"))
    assert error == (f"error: --train_data: {one_class}: the probe needs pictures of at least two classes and two "
                     "of each; the 3 read name chair")
    error = the_error(evaluate("classes", *common, f"--train_data={training_renders}", f"--data={one_class}",
                               f"--photos={tmp_path}"))
    assert error.startswith(f"error: --photos: {tmp_path}")
    assert "is a 3D-GAN" in the_error(evaluate("classes", f"--model={models['gan']}", f"--out={tmp_path / 'o'}",
                                               f"--train_data={training_renders}", f"--data={heldout_renders}"))
    assert not os.path.exists(tmp_path / "o")


def test_classify_trains_the_svm_on_real_shapes_and_resamples_with_a_notice(models, ikea_shapes, tmp_path, evaluate):
    result = evaluate("classify", f"--model={models['gan']}", f"--data={ikea_shapes}", f"--out={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert "holds 20^3 shapes and the model makes 32^3: the shapes are resampled" in result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["classes"] == ["bed", "chair", "sofa"] and metrics["test_shapes"] == 12
    assert metrics["train_shapes"] == 24 and metrics["features"] == (64 + 128 + 256) * 8
    assert sum(map(sum, metrics["confusion"])) == 12 and 0 <= metrics["accuracy"] <= 1
    assert "| **all** | 12 |" in (tmp_path / "table.md").read_text()
    assert 0 <= metrics["untrained_reference"]["accuracy"] <= 1
    picture = np.asarray(Image.open(tmp_path / "confusion.png").convert("RGB"))
    label_width = 8 + 7 * len("chair")
    assert picture.shape == (40 + label_width + 3 * 40 + 10, label_width + 3 * 40 + 10, 3)
    for i, row in enumerate(metrics["confusion"]):  # each cell shaded by its share of the row
        for j, count in enumerate(row):
            shade = int(255 - 200 * count / max(sum(row), 1))
            corner = picture[40 + label_width + i * 40 + 36, label_width + j * 40 + 36]
            assert tuple(corner) == (shade, shade, 255), (i, j, corner)


def test_classify_refuses_a_single_class_split_and_a_missing_split(models, ikea_shapes, tmp_path, evaluate):
    error = the_error(evaluate("classify", f"--model={models['gan']}", f"--data={ikea_shapes}",
                               "--test_split=one_class", f"--out={tmp_path / 'o'}"))
    assert error.startswith("error: --test_split:") and "1 class(es) (chair)" in error
    error = the_error(evaluate("classify", f"--model={models['gan']}", f"--data={ikea_shapes}",
                               "--train_split=nope", f"--out={tmp_path / 'o'}"))
    assert "nope is not a folder" in error
    assert not os.path.exists(tmp_path / "o")


@pytest.fixture(scope="module")
def chair_records(tmp_path_factory):
    """Real ModelNet chairs as records: held_out/ (12) and train/ (24)."""
    root = tmp_path_factory.mktemp("chairs")
    chairs = read_voxel_array(CHAIRS)
    for split, grids in (("held_out", chairs[1:13]), ("train", chairs[13:37])):
        os.makedirs(root / split)
        with tf.io.TFRecordWriter(str(root / split / f"{split}.tfrecord")) as writer:
            for i, grid in enumerate(grids):
                writer.write(encode_example(grid, class_name="chair", source_id=f"{split}/{i}"))
    return root


def test_generation_scores_samples_and_the_training_set_reference(models, chair_records, tmp_path, evaluate):
    result = evaluate("generation", f"--model={models['gan']}", f"--data={chair_records / 'held_out'}",
                      f"--train_data={chair_records / 'train'}", "--samples=8", f"--out={tmp_path}")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_samples"] == 8 and metrics["num_held_out"] == 12 and metrics["num_train"] == 24
    assert 0 <= metrics["coverage_iou"] <= 1 and 0 <= metrics["one_nna_iou"] <= 1
    reference = metrics["training_shapes_reference"]
    assert reference["num_samples"] == 8 and reference["memorization_nn_iou"] == 1.0  # copies of training shapes
    assert "Reference: 8 training shapes" in (tmp_path / "table.md").read_text()
    rows = figure_cells(tmp_path / "nearest_training_shapes.png", 128)  # 8 samples, each beside its nearest
    assert len(rows) == 4 and {len(row) for row in rows} == {4}
    nearest = [cell for row in rows for cell in row[1::2]]
    assert min(map(foreground_share, nearest)) > 0.05  # real chairs
    error = the_error(evaluate("generation", f"--model={models['gan']}", f"--data={tmp_path / 'none'}",
                               f"--train_data={chair_records / 'train'}", f"--out={tmp_path / 'o'}"))
    assert error.startswith("error: --data:") and "not a directory" in error


def test_summary_scores_reconstructions_beside_the_class_mean_and_samples_against_training_shapes(
        models, tmp_path, evaluate):
    from data_tools import synthetic

    alike = dict(resolution=32, views_per_shape=1, image_size=32, num_shards=1, variety=0.0)  # a class is one shape
    synthetic.write_synthetic_dataset(str(tmp_path / "train"), shapes_per_class=2, **alike)
    synthetic.write_synthetic_dataset(str(tmp_path / "heldout"), shapes_per_class=1, first_shape=2, **alike)
    result = evaluate("summary", f"--model={models['vaegan']}", f"--data={tmp_path / 'heldout'}",
                      f"--train_data={tmp_path / 'train'}", "--samples=6", f"--out={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    training, heldout = metrics["reconstruction"]["training"], metrics["reconstruction"]["held-out"]
    assert (training["records"], heldout["records"]) == (12, 6)
    assert training["class_mean_iou"] == heldout["class_mean_iou"] == 1.0  # every shape of a class is the same
    assert 0 <= training["iou"] < 1 and 0 <= heldout["iou"] < 1
    samples = metrics["samples"]
    nearest = samples["nearest_training_iou"]
    assert samples["count"] == len(nearest) == 6 and samples["training_shapes"] == 12
    assert samples["nearest_training_iou_median"] == pytest.approx(np.median(nearest), abs=1e-4)
    assert samples["nearest_training_iou_at_least_0.4"] == sum(v >= 0.4 for v in nearest)
    assert 0 <= samples["empty"] <= 6 and max(nearest) <= 1
    assert "class-mean reference" in result.stdout and "median IoU with the nearest" in result.stdout
    rows = figure_cells(tmp_path / "out" / "summary_nearest.png", 128)  # every sample beside its nearest
    assert len(rows) == 3 and min(foreground_share(row[1]) for row in rows) > 0.05
    error = the_error(evaluate("summary", f"--model={models['gan']}", f"--data={tmp_path / 'heldout'}",
                               f"--train_data={tmp_path / 'train'}", f"--out={tmp_path / 'o'}"))
    assert "is a 3D-GAN" in error
    error = the_error(evaluate("summary", f"--model={models['vaegan']}", f"--data={tmp_path / 'heldout'}",
                               f"--train_data={tmp_path / 'none'}", f"--out={tmp_path / 'o'}"))
    assert error.startswith("error: --train_data:") and "not a directory" in error


def test_latent_draws_strips_from_prior_z_and_from_photos(models, tmp_path, evaluate):
    result = evaluate("latent", f"--model={models['gan']}", f"--out={tmp_path / 'z'}", "--steps=4", "--units=2",
                      "--unit_shapes=2")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "z")) == ["arithmetic.png", "interpolation.png", "metrics.json",
                                                  "table.md", "units.png"]
    metrics = json.loads((tmp_path / "z" / "metrics.json").read_text())
    assert len(metrics["interpolation_occupancy"]) == 4 and len(metrics["units"]) == 2
    photos = sorted(os.path.join(IKEA, "Images", name) for name in os.listdir(os.path.join(IKEA, "Images")))[:2]
    result = evaluate("latent", f"--model={models['vaegan']}", f"--out={tmp_path / 'photos'}", "--steps=3",
                      "--units=1", "--unit_shapes=1", f"--images={','.join(photos)}")
    assert result.returncode == 0, result.stderr
    assert not os.path.exists(tmp_path / "photos" / "arithmetic.png")  # two photos: no a - b + c
    assert json.loads((tmp_path / "photos" / "metrics.json").read_text())["sources"] == [
        os.path.basename(p) for p in photos]


@pytest.mark.parametrize("args, fragment", [
    ([], "--model is required"),
    (["--model=m", "--out=o"], "name a task first"),
    (["bogus", "--model=m", "--out=o"], "name a task first"),
    (["ikea", "--model=m", "--out=o"], "--data is required for ikea"),
    (["renders", "--model=m", "--out=o"], "--data is required for renders"),
    (["renders", "--model=m", "--out=o", "--data=d", "--max_records=-1"], "--max_records"),
    (["generation", "--model=m", "--out=o", "--data=d"], "--train_data is required"),
    (["summary", "--model=m", "--out=o", "--data=d"], "--train_data is required for summary"),
    (["classes", "--model=m", "--out=o", "--data=d"], "--train_data is required for classes"),
    (["ikea", "--model=m", "--out=o", "--data=d", "--photos=p"], "--photos: only classes reads it, not ikea"),
    (["latent", "--model=m", "--out=o", "--threshold=1.5"], "--threshold: 1.5 is not in (0, 1)"),
    (["latent", "--model=/nonexistent.keras", "--out=o"], "/nonexistent.keras: no such file"),
    (["latent", "--model=m", "--out=README.md/x"], "README.md/x: cannot be written"),
    (["latent", "--model=m", "--out=o", "--steps=1"], "--steps: 1 is not in [2, 32]"),
    (["generation", "--model=m", "--out=o", "--data=d", "--train_data=t", "--batch_size=0"],
     "--batch_size: 0 must be at least 1"),
    (["classify", "--model=m", "--out=o", "--data=d", "--svm_c=0"], "--svm_c: 0.0 must be positive"),
])
def test_bad_flags_are_one_line_and_exit_2(args, fragment, evaluate):
    assert fragment in the_error(evaluate(*args))


def test_bad_photos_for_latent_are_one_line(models, tmp_path, evaluate):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    error = the_error(evaluate("latent", f"--model={models['vaegan']}", f"--out={tmp_path / 'o'}",
                               f"--images={broken},{broken}"))
    assert error.startswith(f"error: --images: {broken}")
    error = the_error(evaluate("latent", f"--model={models['vaegan']}", f"--out={tmp_path / 'o'}", f"--images={broken}"))
    assert "give 2 photos" in error
    error = the_error(evaluate("latent", f"--model={models['gan']}", f"--out={tmp_path / 'o'}",
                               f"--images={broken},{broken}"))
    assert "is a 3D-GAN" in error
    assert not os.path.exists(tmp_path / "o")


def test_a_task_is_a_function_of_its_config(models):
    from keras_vaegan.evaluation.settings import EvaluationConfig, EvaluationError
    from keras_vaegan.evaluation.tasks import run_task

    result = run_task("latent", EvaluationConfig(model=models["gan"], steps=2, units=1, unit_shapes=1))
    assert result.metrics["task"] == "latent" and len(result.metrics["interpolation_occupancy"]) == 2
    assert set(result.figures) == {"interpolation.png", "arithmetic.png", "units.png"}
    assert "| unit | shape |" in result.table
    with pytest.raises(EvaluationError, match="^--data is required for ikea$"):
        run_task("ikea", EvaluationConfig(model=models["vaegan"]))


def test_every_evaluation_setting_is_a_flag_with_its_default():
    from keras_vaegan import evaluate as command
    from keras_vaegan.evaluation.settings import EvaluationConfig
    from vaegan_utils.cli import config_from_flags

    defined = {flag.name for flags in command.FLAGS.flags_by_module_dict().values() for flag in flags}
    assert defined == {field.name for field in dataclasses.fields(EvaluationConfig)} | {"out"}
    command.FLAGS.unparse_flags()
    assert config_from_flags(command.FLAGS, EvaluationConfig) == EvaluationConfig()

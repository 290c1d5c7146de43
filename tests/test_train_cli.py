"""train.py and keras_vaegan.training: flags, bad input, resume, NaN, model directory checks."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import default_malloc_environment, in_process
from keras_vaegan import callbacks, data, losses, training
from keras_vaegan.config import ModelConfig, TrainConfig
from keras_vaegan.models import build_model
from vaegan_utils.allocator import jemalloc_library

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_MODEL = ModelConfig(model_type="vaegan", resolution=32, image_size=32)
TINY_TRAIN = dict(batch_size=4, checkpoint_every=2, sample_every=2, log_every=1, keep_checkpoints=5,
                  picture_size=32)


def run_train_program(*args):
    """`python train.py args` in a new process, on the default malloc whatever this one's environment says."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], capture_output=True, text=True,
                          timeout=300, env=default_malloc_environment(TF_CPP_MIN_LOG_LEVEL="2"), cwd=ROOT)


@pytest.fixture
def run_train(capsys, monkeypatch):
    """Runs train.py's main in this process on (args...) from the repository folder; a CompletedProcess."""
    import train

    monkeypatch.chdir(ROOT)
    return in_process(train.main, train.FLAGS, capsys)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--bogus=1"], "bogus"),
        (["--train_steps=0"], "--train_steps"),
        (["--resolution=48"], "resolution"),
        (["--model_type=vae"], "model_type"),
        (["--image_size=50"], "--image_size"),
        (["--d_accuracy_threshold=1.5"], "--d_accuracy_threshold"),
        (["--generator_learning_rate=-1"], "--generator_learning_rate"),
        (["--batch_size=abc"], "batch_size"),
        (["--schedule=separate"], "--pretrain_steps"),
        (["--flagfile=/nonexistent/x.flags"], "/nonexistent/x.flags"),
        (["positional"], "positional"),
        (["--ema_momentum=1.5"], "--ema_momentum"),
        (["--gan_loss=lsgan"], "--gan_loss"),
        (["--gradient_penalty=-1"], "--gradient_penalty"),
        (["--gan_loss=hinge", "--d_accuracy_threshold=0.8"], "--d_accuracy_threshold"),
        (["--gan_loss=wgan_gp", "--d_accuracy_threshold=1", "--gradient_penalty=10"], "--discriminator_norm"),
        (["--model_type=vaegan", "--latent_std=0.33"], "--latent_std"),
        (["--instance_noise=0.1", "--instance_noise_steps=-5"], "--instance_noise_steps"),
        (["--deterministic", "--distribution_strategy=multi_worker_mirrored"], "--deterministic"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(tmp_path, args, fragment, run_train):
    result = run_train(f"--data_dir={tmp_path}", f"--model_dir={tmp_path / 'run'}", *args)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "run").exists()


def test_every_config_field_is_a_flag_with_the_fields_default():
    import train

    defined = {flag.name: flag for flags in train.FLAGS.flags_by_module_dict().values() for flag in flags}
    fields = [field for config in (ModelConfig, TrainConfig) for field in dataclasses.fields(config)]
    assert set(defined) == {field.name for field in fields} | {"data_dir", "model_dir"}
    for field in fields:
        flag = defined[field.name]
        assert flag.default == (str(field.default) if field.metadata.get("choices") else field.default), field.name
        assert flag.help.endswith(field.metadata["help"]), field.name
    train.FLAGS.unparse_flags()
    assert train.configs_from_flags() == (ModelConfig(), TrainConfig())  # unparsed flags hold the defaults


def test_missing_required_flags(run_train):
    assert_one_line_error(run_train(), "--data_dir")


def test_every_flagfile_parses_and_validates(monkeypatch):
    monkeypatch.chdir(ROOT)  # some flagfiles build on others, named relative to the repository
    config_dir = os.path.join(ROOT, "configs")
    names = sorted(os.listdir(config_dir))
    expected = {"demo_32.flags", "gan_32.flags", "gan_64_paper.flags", "vaegan_64_paper.flags", "ikea_32.flags",
                "ikea_32_separate.flags", "ikea_64.flags"}
    assert expected <= set(names)
    for name in names:
        model_config, train_config = _configs_of(name)
        model_config.validate()
        train_config.validate()


def _configs_of(flagfile):
    """(ModelConfig, TrainConfig) that train.py builds from configs/<flagfile> (run from the repository)."""
    import train

    train.FLAGS.unparse_flags()
    try:
        train.parse_flags(train.FLAGS, ["train.py", f"--flagfile=configs/{flagfile}", "--data_dir=d", "--model_dir=m"])
        return train.configs_from_flags()
    finally:
        train.FLAGS.unparse_flags()


def test_ikea_flagfiles_differ_from_the_joint_one_only_where_they_say(monkeypatch):
    monkeypatch.chdir(ROOT)  # flagfiles name the flagfile they build on relative to the repository
    (joint_model, joint_train), (separate_model, separate_train) = (
        [dataclasses.asdict(config) for config in _configs_of(name)] for name in ("ikea_32.flags", "ikea_32_separate.flags")
    )
    assert joint_train["schedule"] == "joint"
    assert separate_model == joint_model
    changed = {key: separate_train[key] for key in joint_train if joint_train[key] != separate_train[key]}
    assert changed == {"schedule": "separate", "pretrain_steps": 1500, "encoder_learning_rate": 0.0001}
    big_model, big_train = _configs_of("ikea_64.flags")
    assert (big_model.resolution, big_model.image_size) == (64, 128)
    assert big_train.generator_learning_rate == joint_train["generator_learning_rate"]


def test_paper_flagfiles_hold_the_paper_hyperparameters():
    text = open(os.path.join(ROOT, "configs", "gan_64_paper.flags")).read()
    for flag in ("--generator_learning_rate=0.0025", "--discriminator_learning_rate=1e-05", "--adam_beta1=0.5",
                 "--batch_size=100", "--resolution=64", "--d_accuracy_threshold=0.8"):
        assert flag in text


def write_records(path, serialized):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in serialized:
            writer.write(record)


def test_data_errors_name_the_file(tmp_path, dataset_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.tfrecord").write_bytes(b"")
    with pytest.raises(data.DataError, match="no non-empty TFRecord"):
        data.find_records(str(empty))
    with pytest.raises(data.DataError, match="not a directory"):
        data.find_records(str(tmp_path / "missing"))

    foreign = tmp_path / "foreign.tfrecord"
    write_records(foreign, [tf.train.Example().SerializeToString()])
    with pytest.raises(data.DataError, match=f"{foreign}: not a keras-vaegan record"):
        data.check_records([str(foreign)], 32, need_images=False)

    garbage = tmp_path / "garbage.tfrecord"
    garbage.write_bytes(os.urandom(100))
    with pytest.raises(data.DataError, match=f"{garbage}: not a keras-vaegan record"):
        data.check_records([str(garbage)], 32, need_images=False)

    voxels_only = tmp_path / "voxels.tfrecord"
    write_records(voxels_only, [data.encode_example(np.ones((32, 32, 32), bool), class_name="cube")])
    data.check_records([str(voxels_only)], 32, need_images=False)
    with pytest.raises(data.DataError, match=f"{voxels_only}: holds no image"):
        data.check_records([str(voxels_only)], 32, need_images=True)

    with pytest.raises(data.DataError, match="are 32\\^3 but the model is 64\\^3"):
        data.check_records(data.find_records(dataset_dir), 64, need_images=False)


def test_cli_reports_data_errors_in_one_line(tmp_path, dataset_dir, run_train):
    result = run_train(f"--data_dir={dataset_dir}", f"--model_dir={tmp_path / 'r'}", "--resolution=64")
    assert_one_line_error(result, "32^3", "64^3")
    assert not (tmp_path / "r").exists()


def test_cli_trains_saves_and_refuses_another_architecture(tmp_path, dataset_dir, run_train):
    run = tmp_path / "run"
    common = [f"--data_dir={dataset_dir}", f"--model_dir={run}", "--batch_size=4", "--checkpoint_every=2"]
    result = run_train_program(*common, "--model_type=gan", "--train_steps=2")
    assert result.returncode == 0, result.stderr
    malloc = "jemalloc" if jemalloc_library() else "glibc's malloc"  # the command re-executes itself on jemalloc
    assert f"starting at step 0 of 2, on {malloc}\n" in result.stdout
    for name in ("model.keras", "samples.png", "run.json", "checkpoints/checkpoint"):
        assert (run / name).exists(), name
    samples = np.asarray(Image.open(run / "samples.png"))
    assert samples.shape[0] >= 4 * 128 and samples.shape[1] >= 4 * 128  # 16 shapes at 128 px or more each
    assert os.listdir(run / "logs")
    run_json = (run / "run.json").read_text()
    checkpoints = sorted(os.listdir(run / "checkpoints"))

    result = run_train(*common, "--model_type=vaegan", "--image_size=32", "--train_steps=4")
    assert_one_line_error(result, str(run), "model_type=gan", "model_type=vaegan")
    assert (run / "run.json").read_text() == run_json
    assert sorted(os.listdir(run / "checkpoints")) == checkpoints


def test_resume_continues_at_the_saved_step(tmp_path, dataset_dir, two_step_run):
    model_dir = copy_of(two_step_run, tmp_path)
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("ckpt-2")
    first = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    assert int(first.step.value) == 2
    assert os.path.exists(os.path.join(model_dir, "reconstructions.png"))

    training.train(TINY_MODEL, TrainConfig(train_steps=5, **TINY_TRAIN), dataset_dir, model_dir, verbose=False)
    resumed = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    assert int(resumed.step.value) == 5
    saved = sorted(os.listdir(os.path.join(model_dir, "checkpoints")))
    # A checkpoint every 2 steps, and one at the last step, which is not a multiple of 2.
    assert [name for name in saved if name.endswith(".index")] == ["ckpt-2.index", "ckpt-4.index", "ckpt-5.index"]


@pytest.fixture(scope="module")
def two_step_run(tmp_path_factory, dataset_dir):
    """The folder of TINY_MODEL trained 2 steps with TINY_TRAIN, trained once: tests continue copies of it."""
    model_dir = str(tmp_path_factory.mktemp("two-steps") / "run")
    training.train(TINY_MODEL, TrainConfig(train_steps=2, **TINY_TRAIN), dataset_dir, model_dir, verbose=False)
    return model_dir


def copy_of(run, tmp_path):
    """A copy of the run folder `run` in tmp_path; its path."""
    return shutil.copytree(run, str(tmp_path / "run"))


def test_a_resumed_run_uses_the_learning_rates_it_is_given(tmp_path, dataset_dir, two_step_run):
    model_dir = copy_of(two_step_run, tmp_path)
    rates = dict(generator_learning_rate=0.0125, discriminator_learning_rate=0.0025, encoder_learning_rate=0.0375)
    training.train(TINY_MODEL, TrainConfig(train_steps=4, **rates, **TINY_TRAIN), dataset_dir, model_dir, verbose=False)
    model = build_model(TINY_MODEL, TrainConfig(**TINY_TRAIN))
    checkpoint = tf.train.Checkpoint(model=model, **training.optimizers_of(model))
    checkpoint.restore(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))).expect_partial()
    assert int(model.step.value) == 4
    stored = {name: float(keras.ops.convert_to_numpy(getattr(model, f"{name}_optimizer").learning_rate)) for name in ("g", "e")}
    assert stored == pytest.approx({"g": 0.0125, "e": 0.0375})


def test_rerunning_a_finished_run_changes_nothing(tmp_path, dataset_dir, two_step_run):
    model_dir = copy_of(two_step_run, tmp_path)
    config = TrainConfig(train_steps=2, **TINY_TRAIN)
    final = os.path.join(model_dir, "model.keras")
    written = os.stat(final).st_mtime_ns
    assert training.train(TINY_MODEL, config, dataset_dir, model_dir, verbose=False) == final
    assert os.stat(final).st_mtime_ns == written

    # Stopped after the last checkpoint but before the final model: the rerun writes it and the pictures.
    os.remove(final)
    os.remove(os.path.join(model_dir, "samples.png"))
    training.train(TINY_MODEL, config, dataset_dir, model_dir, verbose=False)
    assert int(keras.saving.load_model(final).step.value) == 2
    # 16 shapes in 4 rows of 4 cells of --picture_size pixels, 1-pixel separators between them.
    assert Image.open(os.path.join(model_dir, "samples.png")).size == (4 * 33 - 1, 4 * 33 - 1)


def test_separate_schedule_trains_gan_then_encoder(tmp_path, dataset_dir):
    model_dir = str(tmp_path / "run")
    config = TrainConfig(train_steps=4, schedule="separate", pretrain_steps=2, **TINY_TRAIN)
    training.train(TINY_MODEL, config, dataset_dir, model_dir, verbose=False)
    def weights_at(step):
        model = build_model(TINY_MODEL, config)
        tf.train.Checkpoint(model=model).restore(os.path.join(model_dir, "checkpoints", f"ckpt-{step}")).expect_partial()
        return {name: [w.numpy() for w in getattr(model, name).weights] for name in ("generator", "encoder")}

    after_gan, final = weights_at(2), weights_at(4)
    assert all(np.array_equal(a, b) for a, b in zip(after_gan["generator"], final["generator"]))
    assert not all(np.array_equal(a, b) for a, b in zip(after_gan["encoder"], final["encoder"]))


def test_class_weight_trains_a_class_head_over_the_records_classes(tmp_path, dataset_dir):
    model_dir = str(tmp_path / "run")
    config = TrainConfig(train_steps=2, class_weight=0.5, **TINY_TRAIN)
    path = training.train(TINY_MODEL, config, dataset_dir, model_dir, verbose=False)
    classes = data.scan_records(data.find_records(dataset_dir), 32, need_images=True).num_classes
    assert classes == len(set(read_class_ids(dataset_dir))) > 1
    model = keras.saving.load_model(path)
    assert (model.num_classes, model.class_weight) == (classes, 0.5)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["train"]["class_weight"] == 0.5


def read_class_ids(data_dir):
    records = tf.data.TFRecordDataset(data.find_records(data_dir))
    return [int(data.decode_example(record)["class_id"]) for record in records]


def test_class_weight_needs_records_that_name_their_class(tmp_path, dataset_dir, run_train):
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    records = tf.data.TFRecordDataset(data.find_records(dataset_dir)).take(4)
    write_records(unlabelled / "a.tfrecord", [
        data.encode_example(np.ones((32, 32, 32), bool), image=data.decode_example(record)["image"].numpy())
        for record in records
    ])
    common = [f"--data_dir={unlabelled}", f"--model_dir={tmp_path / 'r'}", "--image_size=32", "--batch_size=4"]
    assert_one_line_error(run_train(*common, "--class_weight=1"), "class_weight", str(unlabelled), "class_id")
    assert_one_line_error(run_train(*common, "--model_type=gan", "--class_weight=1"), "class_weight", "3D-VAE-GAN")
    assert not (tmp_path / "r").exists()


def test_nan_stops_names_the_step_and_keeps_the_checkpoint(tmp_path, dataset_dir, monkeypatch, two_step_run):
    model_dir = copy_of(two_step_run, tmp_path)
    before = sorted(os.listdir(os.path.join(model_dir, "checkpoints")))

    healthy = losses.non_saturating_generator_loss
    monkeypatch.setattr(losses, "non_saturating_generator_loss", lambda logits: healthy(logits) * float("nan"))
    with pytest.raises(callbacks.NonFiniteLoss, match=r"step 3: g_loss is nan.*ckpt-2"):
        training.train(TINY_MODEL, TrainConfig(train_steps=6, **TINY_TRAIN), dataset_dir, model_dir, verbose=False)
    assert sorted(os.listdir(os.path.join(model_dir, "checkpoints"))) == before
    monkeypatch.setattr(losses, "non_saturating_generator_loss", healthy)
    training.train(TINY_MODEL, TrainConfig(train_steps=3, **TINY_TRAIN), dataset_dir, model_dir, verbose=False)
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("ckpt-3")


def test_foreign_checkpoint_is_refused_not_partially_loaded(tmp_path, dataset_dir, two_step_run):
    model_dir = copy_of(two_step_run, tmp_path)
    os.remove(os.path.join(model_dir, training.RUN_FILE))  # only the checkpoint is left to tell
    wider = dataclasses.replace(TINY_MODEL, latent_dim=100)
    with pytest.raises(training.CheckpointError, match="ckpt-2: does not fit this model"):
        training.train(wider, TrainConfig(train_steps=4, **TINY_TRAIN), dataset_dir, model_dir, verbose=False)


def test_run_file_records_both_configs(tmp_path, dataset_dir):
    model_dir = str(tmp_path / "run")
    training.check_model_dir(model_dir, TINY_MODEL, TrainConfig(), write=True)
    run = json.loads(open(os.path.join(model_dir, training.RUN_FILE)).read())
    assert run["architecture"] == TINY_MODEL.architecture()
    assert run["train"]["kl_weight"] == 5.0

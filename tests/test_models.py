"""Generator, Discriminator, ImageEncoder, GAN3D, VAEGAN3D: shapes, dtypes, paper widths, `.keras` files."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import (
    build_gan,
    build_vaegan,
    changed_paths,
    make_optimizer,
    random_images,
    random_voxels,
    run_model_saving_test,
    snapshot,
    train_steps,
)
from keras_vaegan.config import ConfigError, ModelConfig, TrainConfig
from keras_vaegan.discriminator import Discriminator
from keras_vaegan.encoder import ImageEncoder
from keras_vaegan.gan import GAN3D
from keras_vaegan.generator import Generator
from keras_vaegan.models import build_model, set_precision
from keras_vaegan.vaegan import VAEGAN3D

LATENT = 200
# The paper's widths (Wu et al. 2016) and the 32^3 setting of 3DGAN-Pytorch, written out.
GENERATOR_WIDTHS = {64: (512, 256, 128, 64, 1), 32: (256, 128, 64, 32, 1)}
DISCRIMINATOR_WIDTHS = {64: (64, 128, 256, 512, 1), 32: (32, 64, 128, 256, 1)}
ENCODER_SPECS = [(11, 4, 64), (5, 2, 128), (5, 2, 256), (5, 2, 512)]  # kernel, stride, channels


def _latent(batch=2, seed=0):
    return np.random.default_rng(seed).random((batch, LATENT)).astype("float32")


def _built(model, input_shape):
    model.build(input_shape)
    return model


def _kernels(model):
    return {v.path: tuple(v.shape) for v in model.weights if v.path.endswith("/kernel")}


def _count(variables):
    return int(sum(np.prod(v.shape) for v in variables))


# ---------------------------------------------------------------- generator


@pytest.mark.parametrize("resolution", [32, 64])
def test_generator_output_shape_dtype_and_range(resolution):
    generator = Generator(resolution, LATENT)
    occupancy = generator(_latent(), training=False)
    assert tuple(occupancy.shape) == (2, resolution, resolution, resolution, 1)
    assert occupancy.dtype == "float32"
    values = keras.ops.convert_to_numpy(occupancy)
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert values.std() > 0  # not a constant volume


@pytest.mark.parametrize(
    "resolution, edges", [(64, [4, 8, 16, 32, 64]), (32, [2, 4, 8, 16, 32])]
)
def test_generator_doubles_the_volume_in_every_block(resolution, edges):
    generator = Generator(resolution, LATENT)
    x = generator.reshape(_latent())
    seen = []
    for block in generator.blocks:
        x = block(x, training=False)
        seen.append(tuple(x.shape[1:]))
    assert seen == [(e, e, e, c) for e, c in zip(edges, GENERATOR_WIDTHS[resolution])]


@pytest.mark.parametrize("resolution", [32, 64])
def test_generator_kernels_have_the_papers_widths(resolution):
    widths = (LATENT,) + GENERATOR_WIDTHS[resolution]
    # Conv3DTranspose kernels are (k, k, k, out, in).
    want = {f"generator/block{i + 1}/conv/kernel": (4, 4, 4, widths[i + 1], widths[i]) for i in range(5)}
    assert _kernels(_built(Generator(resolution, LATENT, name="generator"), (None, LATENT))) == want


@pytest.mark.parametrize("resolution", [32, 64])
def test_generator_parameter_count(resolution):
    widths = (LATENT,) + GENERATOR_WIDTHS[resolution]
    convs = sum(4**3 * widths[i] * widths[i + 1] for i in range(5)) + 1  # bias on the last only
    norms = sum(widths[1:5])
    generator = _built(Generator(resolution, LATENT), (None, LATENT))
    assert _count(generator.trainable_weights) == convs + 2 * norms
    assert _count(generator.non_trainable_weights) == 2 * norms
    if resolution == 64:
        assert generator.count_params() == 17_571_585  # 6.55M + 8.39M + 2.10M + 0.52M + 4097 + BN


# ---------------------------------------------------------------- discriminator


@pytest.mark.parametrize("resolution", [32, 64])
def test_discriminator_logits_and_features(resolution):
    discriminator = Discriminator(resolution)
    voxels = random_voxels(2, resolution)
    logits = discriminator(voxels, training=False)
    assert tuple(logits.shape) == (2, 1) and logits.dtype == "float32"
    logits_again, features = discriminator(voxels, training=False, return_features=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(logits_again), keras.ops.convert_to_numpy(logits))
    widths = DISCRIMINATOR_WIDTHS[resolution]
    want = [(2, resolution // 2**i, resolution // 2**i, resolution // 2**i, widths[i - 1]) for i in range(1, 5)]
    assert [tuple(f.shape) for f in features] == want
    # Features follow LeakyReLU(0.2): negative values exist and are damped.
    first = keras.ops.convert_to_numpy(features[0])
    assert first.min() < 0


@pytest.mark.parametrize("resolution", [32, 64])
def test_discriminator_kernels_have_the_papers_widths(resolution):
    widths = (1,) + DISCRIMINATOR_WIDTHS[resolution]
    # Conv3D kernels are (k, k, k, in, out).
    want = {f"discriminator/block{i + 1}/conv/kernel": (4, 4, 4, widths[i], widths[i + 1]) for i in range(5)}
    assert _kernels(_built(Discriminator(resolution, name="discriminator"), (None,) + (resolution,) * 3 + (1,))) == want


@pytest.mark.parametrize("resolution", [32, 64])
def test_discriminator_parameter_count(resolution):
    widths = (1,) + DISCRIMINATOR_WIDTHS[resolution]
    convs = sum(4**3 * widths[i] * widths[i + 1] for i in range(5)) + 1
    norms = sum(widths[1:5])
    discriminator = _built(Discriminator(resolution), (None,) + (resolution,) * 3 + (1,))
    assert _count(discriminator.trainable_weights) == convs + 2 * norms
    assert _count(discriminator.non_trainable_weights) == 2 * norms
    if resolution == 64:
        assert discriminator.count_params() == 11_050_753  # 4096 + 0.52M + 2.10M + 8.39M + 32769 + BN


# ---------------------------------------------------------------- encoder


@pytest.mark.parametrize("image_size", [256, 64, 32])
def test_encoder_moments(image_size):
    encoder = ImageEncoder(image_size, LATENT)
    mean, log_variance = encoder(random_images(2, image_size), training=False)
    for moment in (mean, log_variance):
        assert tuple(moment.shape) == (2, LATENT) and moment.dtype == "float32"
    mean, log_variance = keras.ops.convert_to_numpy(mean), keras.ops.convert_to_numpy(log_variance)
    assert not np.array_equal(mean, log_variance)  # two different halves of the last layer
    assert not np.array_equal(mean[0], mean[1])  # depends on the image


@pytest.mark.parametrize("image_size", [256, 64])
def test_encoder_kernels_and_parameter_count(image_size):
    encoder = _built(ImageEncoder(image_size, LATENT, name="encoder"), (None, image_size, image_size, 3))
    channels = [3] + [c for _, _, c in ENCODER_SPECS]
    want = {
        f"encoder/block{i + 1}/conv/kernel": (k, k, channels[i], channels[i + 1])
        for i, (k, _, _) in enumerate(ENCODER_SPECS)
    }
    last = 8 if image_size == 256 else image_size // 32  # the paper's 8x8 kernel at 256x256
    want["encoder/block5/conv/kernel"] = (last, last, 512, 2 * LATENT)
    assert _kernels(encoder) == want
    convs = sum(k * k * channels[i] * channels[i + 1] for i, (k, _, _) in enumerate(ENCODER_SPECS))
    convs += last * last * 512 * 2 * LATENT + 2 * LATENT
    norms = sum(channels[1:])
    assert _count(encoder.trainable_weights) == convs + 2 * norms
    assert _count(encoder.non_trainable_weights) == 2 * norms


# ---------------------------------------------------------------- mixed precision


def test_outputs_are_float32_under_mixed_bfloat16(restore_dtype_policy):
    set_precision("mixed_bfloat16")
    generator = Generator(32, LATENT)
    discriminator = Discriminator(32)
    encoder = ImageEncoder(32, LATENT)
    occupancy = generator(_latent(), training=False)
    logits, features = discriminator(random_voxels(), training=False, return_features=True)
    mean, log_variance = encoder(random_images(), training=False)
    for tensor in (occupancy, logits, mean, log_variance):
        assert tensor.dtype == "float32"
    # The policy really is in effect: computations inside run in bfloat16, variables stay float32.
    assert all(f.dtype == "bfloat16" for f in features)
    assert {v.dtype for v in generator.weights} == {"float32"}
    values = keras.ops.convert_to_numpy(occupancy)
    assert values.min() >= 0.0 and values.max() <= 1.0


def test_a_train_step_under_mixed_bfloat16(restore_dtype_policy):
    set_precision("mixed_bfloat16")
    model = build_vaegan("adam", 1e-4)
    history = train_steps(model, (random_images(), random_voxels()))
    assert set(history) == {"d_loss", "g_loss", "d_acc", "d_updated", "kl_loss", "recon_loss"}
    assert all(np.isfinite(v[0]) for v in history.values()), history
    assert keras.ops.convert_to_numpy(model.reconstruct(random_images())).dtype == np.float32


def test_restore_dtype_policy_fixture_put_float32_back():
    # Runs after the mixed precision tests above (file order); they must not leak their policy.
    assert keras.config.dtype_policy().name == "float32"


# ---------------------------------------------------------------- build_model


@pytest.mark.parametrize("model_type, cls", [("gan", GAN3D), ("vaegan", VAEGAN3D)])
def test_build_model_from_configs(model_type, cls):
    model = build_model(
        ModelConfig(model_type=model_type, resolution=32, image_size=32),
        TrainConfig(generator_learning_rate=0.002, discriminator_learning_rate=3e-5, d_accuracy_threshold=0.7),
    )
    assert type(model) is cls
    assert model.d_accuracy_threshold == 0.7
    assert float(keras.ops.convert_to_numpy(model.g_optimizer.learning_rate)) == pytest.approx(0.002)
    assert float(keras.ops.convert_to_numpy(model.d_optimizer.learning_rate)) == pytest.approx(3e-5)
    assert float(keras.ops.convert_to_numpy(model.g_optimizer.beta_1)) == pytest.approx(0.5)
    assert hasattr(model, "e_optimizer") == (model_type == "vaegan")


def test_build_model_refuses_a_uniform_prior_for_vaegan():
    with pytest.raises(ConfigError, match="^latent_prior:"):
        build_model(ModelConfig(model_type="vaegan", resolution=32, image_size=32), TrainConfig(latent_prior="uniform"))


# ---------------------------------------------------------------- .keras files


def test_generator_saving(tmp_path):
    run_model_saving_test(Generator(32, LATENT, name="generator"), _latent(), tmp_path)


def test_discriminator_saving(tmp_path):
    run_model_saving_test(Discriminator(32, name="discriminator"), random_voxels(), tmp_path)


def test_encoder_saving(tmp_path):
    run_model_saving_test(ImageEncoder(32, LATENT, name="encoder"), random_images(), tmp_path)


def _assert_same(a, b):
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_gan3d_saving_then_training_resumes(tmp_path):
    model = build_gan(latent_prior="normal", d_accuracy_threshold=0.6, label_smoothing=0.1, seed=7)
    voxels = random_voxels()
    train_steps(model, voxels)  # moves BatchNorm statistics and the step counter off their initial values
    loaded = run_model_saving_test(model, _latent(), tmp_path, name="gan3d")
    _assert_same(loaded.discriminator(voxels), model.discriminator(voxels))
    assert int(loaded.step.numpy()) == 1
    assert (loaded.latent_prior, loaded.d_accuracy_threshold, loaded.label_smoothing, loaded.seed) == (
        "normal", 0.6, 0.1, 7
    )
    loaded.compile(g_optimizer=make_optimizer("adam", 1e-3), d_optimizer=make_optimizer("adam", 1e-3))
    before = snapshot(loaded.generator.trainable_variables)
    history = train_steps(loaded, voxels)
    assert int(loaded.step.numpy()) == 2
    assert all(np.isfinite(v[0]) for v in history.values())
    assert changed_paths(loaded.generator.trainable_variables, before)


def test_vaegan3d_saving_then_training_resumes(tmp_path):
    model = build_vaegan(kl_weight=0.5, reconstruction_weight=1e-3, noise_warmup_steps=7)
    images, voxels = random_images(), random_voxels()
    train_steps(model, (images, voxels))
    loaded = run_model_saving_test(model, _latent(), tmp_path, name="vaegan3d")
    _assert_same(loaded.reconstruct(images), model.reconstruct(images))
    for a, b in zip(loaded.encode(images), model.encode(images)):
        _assert_same(a, b)
    assert (loaded.image_size, loaded.kl_weight, loaded.reconstruction_weight) == (32, 0.5, 1e-3)
    assert loaded.noise_warmup_steps == 7
    assert int(loaded.step.numpy()) == 1
    loaded.compile(
        g_optimizer=make_optimizer("sgd", 0.01),
        d_optimizer=make_optimizer("sgd", 0.01),
        e_optimizer=make_optimizer("sgd", 0.01),
    )
    before = snapshot(loaded.encoder.trainable_variables)
    history = train_steps(loaded, (images, voxels))
    assert int(loaded.step.numpy()) == 2
    assert all(np.isfinite(v[0]) for v in history.values())
    assert changed_paths(loaded.encoder.trainable_variables, before)


def test_vaegan3d_predictive_occupancy_is_the_mean_of_posterior_draws():
    model = build_vaegan()
    images = random_images()
    mean, log_variance = (keras.ops.convert_to_numpy(t) for t in model.encode(images))
    draws = [model.generator(mean + np.exp(0.5 * log_variance) * tf.random.stateless_normal(mean.shape, [5, i]))
             for i in range(3)]
    expected = np.mean([keras.ops.convert_to_numpy(d) for d in draws], axis=0)
    predictive = keras.ops.convert_to_numpy(model.reconstruct(images, samples=3, seed=5))
    np.testing.assert_allclose(predictive, expected, atol=1e-6)
    at_mean = keras.ops.convert_to_numpy(model.reconstruct(images))
    assert np.abs(predictive - at_mean).max() > 1e-4  # the draws differ from G at the posterior mean
    _assert_same(model.reconstruct(images, samples=3, seed=5), predictive)


def test_vaegan3d_saves_its_class_head(tmp_path):
    model = build_vaegan(num_classes=3, class_weight=0.5)
    images = random_images()
    train_steps(model, (images, random_voxels(), np.array([1, 2], "int64")))
    loaded = run_model_saving_test(model, _latent(), tmp_path, name="vaegan3d")
    assert (loaded.num_classes, loaded.class_weight) == (3, 0.5)
    _assert_same(loaded.classify(images), model.classify(images))
    _assert_same(loaded.reconstruct(images), model.reconstruct(images))


# ---------------------------------------------------------------- tf.train.Checkpoint (what training resumes from)


@pytest.mark.parametrize(
    "factory, input_shape",
    [
        (lambda: Generator(32, LATENT, name="generator"), (None, LATENT)),
        (lambda: Discriminator(32, name="discriminator"), (None, 32, 32, 32, 1)),
        (lambda: ImageEncoder(32, LATENT, name="encoder"), (None, 32, 32, 3)),
    ],
    ids=["generator", "discriminator", "encoder"],
)
def test_tf_checkpoint_holds_every_weight(factory, input_shape, tmp_path):
    network = _built(factory(), input_shape)
    path = tf.train.Checkpoint(model=network).write(str(tmp_path / "ckpt"))
    stored = [name for name, _ in tf.train.list_variables(path) if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    expected = len(network.weights)
    assert len(stored) == expected, stored
    fresh = _built(factory(), input_shape)
    tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
    for original, restored in zip(network.weights, fresh.weights):
        np.testing.assert_array_equal(restored.numpy(), original.numpy(), err_msg=original.path)


def test_tf_checkpoint_resume_restores_batch_norm_statistics(tmp_path):
    """As keras_vaegan.training checkpoints: the model and its optimizers, restored into a fresh compiled model."""
    model = build_gan("sgd", 0.01)
    train_steps(model, random_voxels(), steps=2)  # BatchNorm statistics move off 0 / 1
    objects = lambda m: dict(model=m, g_optimizer=m.g_optimizer, d_optimizer=m.d_optimizer)  # noqa: E731
    path = tf.train.Checkpoint(**objects(model)).write(str(tmp_path / "ckpt"))
    fresh = build_gan("sgd", 0.01)
    tf.train.Checkpoint(**objects(fresh)).read(path).assert_existing_objects_matched()
    not_restored = [
        original.path
        for original, restored in zip(model.weights, fresh.weights)
        if not np.array_equal(restored.numpy(), original.numpy())
    ]
    assert not_restored == []

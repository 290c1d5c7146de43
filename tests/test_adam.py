"""FusedAdam: Keras' Adam update in TensorFlow's fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vaegan.adam import FusedAdam

SHAPES = [(3, 3, 3, 4, 8), (8,), (2, 5)]


def _variables(seed):
    rng = np.random.default_rng(seed)
    return [keras.Variable(rng.normal(size=shape).astype("float32"), name=f"w{i}") for i, shape in enumerate(SHAPES)]


def _gradients(rng):
    return [tf.constant(rng.normal(size=shape).astype("float32")) for shape in SHAPES]


def _train(optimizer, steps=5):
    """Applies `steps` steps of random gradients (the same sequence for every optimizer); returns the
    variables and the optimizer."""
    variables = _variables(0)
    optimizer.build(variables)
    rng = np.random.default_rng(1)
    apply = tf.function(lambda gradients: optimizer.apply(gradients, variables))
    for _ in range(steps):
        apply(_gradients(rng))
    return variables, optimizer


@pytest.mark.parametrize("ema", [{}, {"use_ema": True, "ema_momentum": 0.9}])
def test_fused_adam_takes_keras_adams_steps(ema):
    settings = dict(learning_rate=0.01, beta_1=0.5, **ema)
    fused, fused_optimizer = _train(FusedAdam(**settings))
    reference, reference_optimizer = _train(keras.optimizers.Adam(**settings))
    unnamed = lambda optimizer: [v.path.split("/", 1)[1] for v in optimizer.variables]  # fused_adam/..., adam/...
    assert unnamed(fused_optimizer) == unnamed(reference_optimizer)
    for ours, theirs in zip(fused_optimizer.variables, reference_optimizer.variables):
        if "momentum" in ours.path or "iteration" in ours.path:  # 1 - beta_1 = 0.5 is exact in float32
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)
        else:  # 1 - beta_2 differs in its last bits (see FusedAdam)
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-7, err_msg=ours.path)
    for ours, theirs, start in zip(fused, reference, _variables(0)):
        moved = np.abs(theirs.numpy() - start.numpy())
        assert np.median(moved) > 1e-3  # five steps of up to lr each
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-3 * settings["learning_rate"])


def test_a_checkpoint_of_keras_adam_restores_into_fused_adam(tmp_path):
    _, reference_optimizer = _train(keras.optimizers.Adam(0.01, beta_1=0.5), steps=2)
    path = tf.train.Checkpoint(optimizer=reference_optimizer).write(str(tmp_path / "adam"))
    restored = FusedAdam(0.01, beta_1=0.5)
    restored.build(_variables(0))
    tf.train.Checkpoint(optimizer=restored).read(path).assert_consumed()
    for ours, theirs in zip(restored.variables, reference_optimizer.variables):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


def test_amsgrad_is_refused():
    with pytest.raises(ValueError, match="amsgrad"):
        FusedAdam(amsgrad=True)

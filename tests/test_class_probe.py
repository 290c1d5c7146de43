"""keras_vaegan.evaluation.class_probe: the linear probe of the encoder's code, on codes made up to hold
their class or not."""

import numpy as np
import pytest

from keras_vaegan.evaluation import class_probe

CLASSES = ["bed", "chair", "table"]


def made_up_codes(rng, count, informative, dims=64):
    """(codes, class names): `count` codes of each class; with `informative` each class's codes sit around
    their own centre, else all are the same noise."""
    names = [name for name in CLASSES for _ in range(count)]
    centres = rng.normal(0, 3, (len(CLASSES), dims)) if informative else np.zeros((len(CLASSES), dims))
    codes = np.stack([centres[CLASSES.index(name)] + rng.normal(0, 1, dims) for name in names])
    return codes.astype(np.float32), names


def test_a_code_that_holds_the_class_is_read_on_every_set():
    rng = np.random.default_rng(0)
    train = made_up_codes(rng, 30, informative=True)
    heldout = made_up_codes(np.random.default_rng(0), 10, informative=True)  # the same centres
    results = class_probe.probe_results(*train, {"held-out": heldout}, CLASSES)
    assert set(results) == {"training", "held-out"}
    for name, pictures in (("training", 90), ("held-out", 30)):
        assert results[name]["accuracy"] == 1.0 and results[name]["pictures"] == pictures
        assert results[name]["per_class_accuracy"] == {name: 1.0 for name in CLASSES}
        assert np.trace(results[name]["confusion"]) == pictures


def test_the_training_accuracy_is_cross_validated_not_the_fit_itself():
    # 64-dimensional noise, 20 codes per class: a fit names its own codes perfectly, yet no held-out fold
    # can be named better than chance.
    train_codes, train_names = made_up_codes(np.random.default_rng(1), 20, informative=False)
    fitted = class_probe._probe(0).fit(train_codes, train_names)
    assert np.mean(fitted.predict(train_codes) == np.asarray(train_names)) == 1.0
    results = class_probe.probe_results(train_codes, train_names, {}, CLASSES)
    assert results["training"]["accuracy"] < 0.6


def test_the_majority_reference_names_the_most_frequent_training_class():
    rng = np.random.default_rng(2)
    codes, names = made_up_codes(rng, 10, informative=True)
    codes, names = np.concatenate([codes, codes[:5]]), names + ["bed"] * 5  # bed is the most frequent
    photos = (codes[:4], ["bed", "chair", "chair", "table"])
    results = class_probe.probe_results(codes, names, {"photos": photos}, CLASSES)
    assert class_probe.most_frequent(names) == "bed"
    assert results["photos"]["majority_accuracy"] == 0.25
    assert results["training"]["majority_accuracy"] == pytest.approx(15 / 35)
    assert class_probe.fewest_per_class(names) == 10


def test_codes_are_the_encoders_posterior_means_in_batches():
    encoder = class_probe.untrained_encoder(32, 8, seed=0)
    pictures = np.random.default_rng(3).uniform(0, 1, (5, 32, 32, 3)).astype(np.float32)
    seen = []
    codes = class_probe.encoder_codes(encoder, pictures, batch_size=2, progress=lambda done, total: seen.append(done))
    mean, _ = encoder(pictures, training=False)
    assert codes.shape == (5, 8) and seen == [2, 4, 5]
    np.testing.assert_allclose(codes, np.asarray(mean), atol=1e-5)
    again = class_probe.untrained_encoder(32, 8, seed=0)
    np.testing.assert_array_equal(class_probe.encoder_codes(again, pictures), codes)  # seeded: the same encoder

"""How much of a picture's class the image encoder's code holds: a linear probe on E's posterior mean.

A multinomial logistic regression is fitted on the codes of the training pictures and scored on other
pictures (held-out renders, real photos): accuracy that stays high away from the training pictures means
the encoder carries class knowledge over, not only the training set's shapes. On the training pictures
themselves the accuracy is cross-validated (each picture named by a probe fitted without it).
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from keras_vaegan.evaluation.classify import label_metrics

PROBE_C = 1.0  # inverse L2 strength of the logistic regression, on standardized codes
FOLDS = 5  # of the cross-validated accuracy on the training pictures


def untrained_encoder(image_size, latent_dim, seed):
    """A freshly initialized image encoder of the same shape: its probe tells how much training added."""
    import keras

    from keras_vaegan.encoder import ImageEncoder

    keras.utils.set_random_seed(seed)
    encoder = ImageEncoder(image_size, latent_dim, name="untrained_encoder")
    encoder.build((None, image_size, image_size, 3))
    return encoder


def encoder_codes(encoder, pictures, batch_size=16, progress=None):
    """(N, latent) float32 posterior means of pictures (N, S, S, 3) in [0, 1]."""
    codes = []
    for start in range(0, len(pictures), batch_size):
        mean, _ = encoder(np.asarray(pictures[start : start + batch_size], np.float32), training=False)
        codes.append(np.asarray(mean, np.float32))
        if progress:
            progress(min(start + batch_size, len(pictures)), len(pictures))
    return np.concatenate(codes)


def _probe(seed):
    return make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=5000, random_state=seed))


def most_frequent(class_names):
    """The class named most often (the first in sorted order among ties)."""
    names, counts = np.unique(np.asarray(class_names), return_counts=True)
    return str(names[np.argmax(counts)])


def fewest_per_class(class_names):
    """How many pictures the rarest class has (the cross-validation needs at least 2)."""
    return int(np.unique(np.asarray(class_names), return_counts=True)[1].min())


def probe_results(train_codes, train_names, other_sets, classes, seed=0):
    """{set name: label_metrics + "pictures" + "majority_accuracy"} for "training" (cross-validated over
    FOLDS folds, fewer when a class has fewer pictures, at least 2) and each (codes, class names) of `other_sets`
    ({name: ...}), named by the probe fitted on all training codes. "majority_accuracy": always naming the
    most frequent training class, the reference that sees no picture."""
    majority = most_frequent(train_names)
    folds = min(FOLDS, fewest_per_class(train_names))
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed)
    predicted = {"training": (cross_val_predict(_probe(seed), train_codes, train_names, cv=splits), train_names)}
    probe = _probe(seed).fit(train_codes, train_names)
    predicted.update({name: (probe.predict(codes), names) for name, (codes, names) in other_sets.items()})
    results = {}
    for name, (labels, names) in predicted.items():
        results[name] = label_metrics(labels, names, classes)
        results[name]["pictures"] = len(names)
        results[name]["majority_accuracy"] = float(np.mean(np.asarray(names) == majority))
    return results

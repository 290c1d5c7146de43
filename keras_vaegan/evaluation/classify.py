"""The paper's shape classification protocol: discriminator features into a linear SVM.

Wu et al. (2016, section 4.2) concatenate the responses of the discriminator's
second, third and fourth convolution layers, each max-pooled (kernels 8, 4, 2
at 64^3) to a 2^3 grid, and train a linear SVM on them.
"""

import numpy as np
import tensorflow as tf
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

POOLED_GRID = 2
FEATURE_LAYERS = (1, 2, 3)  # indices into the discriminator's four feature maps: layers 2-4


def _max_pool_to_grid(feature_map):
    """(N, S, S, S, C) -> (N, 8 * C): max over each of the 2^3 equal blocks of the grid."""
    size = feature_map.shape[1]
    kernel = max(size // POOLED_GRID, 1)
    pooled = tf.nn.max_pool3d(feature_map, kernel, kernel, "VALID")
    return tf.reshape(pooled, [tf.shape(pooled)[0], -1])


def untrained_discriminator(resolution, seed):
    """A freshly initialized discriminator: its features tell how much training added."""
    import keras

    from keras_vaegan.discriminator import Discriminator

    keras.utils.set_random_seed(seed)
    discriminator = Discriminator(resolution=resolution, name="untrained_discriminator")
    discriminator.build((None, resolution, resolution, resolution, 1))
    return discriminator


def discriminator_features(discriminator, grids, batch_size=16, progress=None):
    """(N, F) float32 features of binary grids (N, R, R, R): layers 2-4 pooled to 2^3, concatenated."""
    features = []
    for start in range(0, len(grids), batch_size):
        batch = tf.constant(np.asarray(grids[start : start + batch_size], np.float32)[..., None])
        _, maps = discriminator(batch, training=False, return_features=True)
        features.append(tf.concat([_max_pool_to_grid(tf.cast(maps[i], tf.float32)) for i in FEATURE_LAYERS], 1))
        if progress:
            progress(min(start + batch_size, len(grids)), len(grids))
    return np.concatenate([f.numpy() for f in features])


def train_classifier(features, labels, c=1.0, seed=0):
    """A linear SVM on standardized features (scikit-learn), fitted."""
    classifier = make_pipeline(StandardScaler(), LinearSVC(C=c, max_iter=20000, random_state=seed))
    return classifier.fit(features, labels)


def classification_metrics(classifier, features, labels, class_names):
    """label_metrics of the classifier's predictions of `features`."""
    return label_metrics(classifier.predict(features), labels, class_names)


def label_metrics(predicted, labels, class_names):
    """{"accuracy", "per_class_accuracy": {name: value}, "confusion": rows = true class, columns = predicted}."""
    matrix = confusion_matrix(labels, predicted, labels=class_names)
    per_class = {name: float(row[i] / row.sum()) for i, (name, row) in enumerate(zip(class_names, matrix))
                 if row.sum()}
    return {
        "accuracy": float(np.mean(np.asarray(predicted) == np.asarray(labels))),
        "per_class_accuracy": per_class,
        "confusion": matrix.tolist(),
    }

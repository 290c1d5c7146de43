"""One model from several training checkpoints of a run: the mean of their weights."""

import numpy as np

from keras_vaegan.model_file import restore_weights


def average_checkpoints(model, prefixes, model_name="the model", progress=None):
    """Sets `model`'s floating-point weights to their mean over the training checkpoints `prefixes` (oldest
    first); the others (the step counter) are the newest checkpoint's. `model` must be of the run's
    architecture; a checkpoint that does not fit raises ModelFileError naming it. Returns `model`."""
    totals = None
    for done, prefix in enumerate(prefixes, 1):
        restore_weights(model, prefix, model_name)
        values = [np.asarray(weight.numpy(), np.float64) for weight in model.weights]
        totals = values if totals is None else [total + value for total, value in zip(totals, values)]
        if progress:
            progress(done, len(prefixes))
    for weight, total in zip(model.weights, totals):
        if np.issubdtype(np.dtype(weight.dtype), np.floating):
            weight.assign((total / len(prefixes)).astype(weight.dtype))
    return model

"""The IKEA single-image reconstruction protocol (Wu et al. 2016, after Girdhar et al. 2016).

A prediction is real-valued occupancy, resampled to the ground truth's grid
(20^3 in the benchmark); its score is the average precision of the voxels
ranked by predicted occupancy against the binary ground truth, per photo,
averaged per class, then over classes. IoU at fixed thresholds is reported
beside it. Two reference predictors tell what a number means: the mean shape
of the model library and the mean shape of the photo's true class, both with
the photo's own model left out.
"""

import numpy as np
from sklearn.metrics import average_precision_score

IOU_THRESHOLDS = (0.3, 0.4, 0.5)
TRANSFORM_NAMES = tuple(f"{'mirror x, ' if mirror else ''}turn {quarter * 90}" for mirror in (0, 1)
                        for quarter in range(4))


def area_weights(source, target):
    """(target, source) matrix: the fraction of target cell i that source cell j covers, on one axis."""
    edges = np.arange(target + 1) * (source / target)
    low = np.maximum(edges[:-1, None], np.arange(source)[None, :])
    high = np.minimum(edges[1:, None], np.arange(1, source + 1)[None, :])
    return np.clip(high - low, 0.0, None) * (target / source)


def resample_occupancy(grid, resolution):
    """Real-valued occupancy (R, R, R) at `resolution`^3: each cell the volume-weighted mean of the cells
    it overlaps (exact for any ratio, so 32^3 and 64^3 predictions meet a 20^3 ground truth fairly)."""
    grid = np.asarray(grid, np.float64)
    if grid.shape[0] == resolution:
        return grid
    weights = area_weights(grid.shape[0], resolution)
    return np.einsum("ai,bj,ck,ijk->abc", weights, weights, weights, grid, optimize=True)


def transformed(grid):
    """The 8 views of a grid named in TRANSFORM_NAMES: quarter turns about the vertical axis z, each
    also mirrored in x. Literature scores sometimes take the best of these per photo."""
    views = []
    for source in (grid, grid[::-1]):
        views += [np.rot90(source, quarter, axes=(0, 1)) for quarter in range(4)]
    return views


def average_precision(prediction, truth):
    """Average precision of occupancy scores against a binary grid (scikit-learn's definition)."""
    return float(average_precision_score(np.asarray(truth).ravel() > 0.5, np.asarray(prediction).ravel()))


def iou(prediction, truth, threshold):
    """Intersection over union of the prediction above `threshold` with the binary ground truth."""
    predicted, actual = np.asarray(prediction) > threshold, np.asarray(truth) > 0.5
    union = np.logical_or(predicted, actual).sum()
    return float(np.logical_and(predicted, actual).sum() / union) if union else 1.0


def best_transform_ap(prediction, truth):
    """(the highest AP of the 8 views of `prediction` in TRANSFORM_NAMES, that view's name)."""
    scores = [average_precision(view, truth) for view in transformed(prediction)]
    best = int(np.argmax(scores))
    return scores[best], TRANSFORM_NAMES[best]


def score(prediction, truth, best_transform=False):
    """{"ap", "iou@0.3", ...} of one prediction already at the truth's resolution; with best_transform
    also "ap_best" and "best_transform" (the view in TRANSFORM_NAMES with the highest AP)."""
    result = {"ap": average_precision(prediction, truth)}
    result.update({f"iou@{t}": iou(prediction, truth, t) for t in IOU_THRESHOLDS})
    if best_transform:
        result["ap_best"], result["best_transform"] = best_transform_ap(prediction, truth)
    return result


class ReferencePredictors:
    """Mean shapes of a model library, each leaving one model out: of all models, and of one class."""

    def __init__(self, grids, classes):
        """`grids`: {model_id: binary grid}, `classes`: {model_id: class name}; all grids one shape."""
        self.grids = {key: np.asarray(grid, np.float64) for key, grid in grids.items()}
        self.classes = classes
        self.total = sum(self.grids.values())
        self.class_totals, self.class_counts = {}, {}
        for key, grid in self.grids.items():
            name = classes[key]
            self.class_totals[name] = self.class_totals.get(name, 0) + grid
            self.class_counts[name] = self.class_counts.get(name, 0) + 1

    def _mean_without(self, total, count, model_id, is_member):
        if is_member:
            total, count = total - self.grids[model_id], count - 1
        return total / count if count else None

    def mean_shape(self, model_id):
        """The mean of every library model except `model_id`."""
        return self._mean_without(self.total, len(self.grids), model_id, model_id in self.grids)

    def class_mean_shape(self, model_id, class_name):
        """The mean of the library's `class_name` models except `model_id` (an oracle on the class);
        None when the library has no other model of that class."""
        is_member = model_id in self.grids and self.classes[model_id] == class_name
        return self._mean_without(self.class_totals.get(class_name, 0), self.class_counts.get(class_name, 0),
                                  model_id, is_member)


def class_means(rows, key):
    """{class: mean of row[key] over that class's photos, ..., "mean": mean over the classes}."""
    by_class = {}
    for row in rows:
        by_class.setdefault(row["class"], []).append(row[key])
    table = {name: float(np.mean(values)) for name, values in sorted(by_class.items())}
    table["mean"] = float(np.mean(list(table.values())))
    return table


def markdown_table(tables, classes, scale=100.0, digits=1):
    """Rows `{predictor: {class: value, "mean": value}}` as a Markdown table, values times `scale`."""
    header = ["predictor", *classes, "mean"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, table in tables.items():
        cells = [f"{table[c] * scale:.{digits}f}" if c in table else "-" for c in (*classes, "mean")]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)

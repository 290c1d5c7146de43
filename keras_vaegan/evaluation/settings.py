"""What an evaluation task is given: EvaluationConfig, whose fields are the evaluate command's flags."""

import dataclasses

from keras_vaegan.config import setting

TASKS = ("ikea", "renders", "generation", "classify", "classes", "latent", "summary")
ENSEMBLE_TASKS = ("ikea", "renders")


class EvaluationError(ValueError):
    """A bad input of an evaluation; its message is the one line the user reads, naming the flag or file."""


def _check(condition, message):
    if not condition:
        raise EvaluationError(message)


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """One evaluation: the model, the data and the task's settings."""

    model: str = setting("", "The .keras file written by training (or by keras_vaegan.convert).")
    ensemble: tuple = setting(
        (),
        "ikea, renders: more .keras files (other runs of the same configuration), training checkpoints of "
        "--model's architecture (RUN/checkpoints/ckpt-N) or folders of them (every checkpoint in "
        "RUN/checkpoints); each picture's prediction is the mean of --model's and theirs.",
    )
    data: str = setting(
        "",
        "ikea: an IKEA dataset folder; renders: TFRecords of pictures and shapes; generation, summary: held-out "
        "TFRecords; classify: a converted dataset folder with split sub-folders; classes: TFRecords of held-out "
        "pictures with their classes.",
    )
    posterior_samples: int = setting(
        0,
        "ikea, renders: each picture's prediction is the mean of G over this many draws of z from the encoder's "
        "q(z | picture), the model's predictive occupancy (0: G at the posterior mean).",
    )
    batch_size: int = setting(8, "Shapes or photos per forward pass.")
    seed: int = setting(0, "Seed of latent vectors and subsets.")
    best_transform: bool = setting(False, "ikea: also report the best of 8 turns/mirrors of each prediction.")
    heldout_models: str = setting(
        "",
        "ikea: a file of model ids left out of training (heldout_models.txt of data_tools.ikea_renders); "
        "their photos are also scored on their own.",
    )
    photos: str = setting("", "classes: an IKEA dataset folder whose photos the probe also names.")
    max_records: int = setting(
        1000, "renders, summary, classes: score a seeded random subset of at most this many records (0: all of them)."
    )
    train_data: str = setting(
        "", "generation, summary: TFRecords of the training shapes (memorization check); classes: of the "
        "training pictures the probe is fitted on.")
    samples: int = setting(100, "generation, summary: shapes drawn from the prior.")
    threshold: float = setting(0.5, "generation, latent, summary: occupancy level of a voxel.")
    train_split: str = setting("train", "classify: sub-folder of --data the SVM is trained on.")
    test_split: str = setting("test", "classify: sub-folder of --data it is scored on.")
    svm_c: float = setting(1.0, "classify: regularization C of the linear SVM.")
    images: tuple = setting((), "latent: 2 or 3 photos to read through the encoder instead of prior z.")
    steps: int = setting(8, "latent: shapes in the interpolation strip, both ends included.")
    unit_shapes: int = setting(16, "latent: prior shapes on which each first-layer unit is switched off.")
    units: int = setting(8, "latent: first-layer units shown (those that change most voxels).")

    def validate(self, task):
        """Raises EvaluationError for the first setting `task` cannot run with; returns self."""
        _check(task in TASKS, f"name a task first: python -m keras_vaegan.evaluate {{{'|'.join(TASKS)}}} "
                              "--model ... --out ...")
        _check(task == "latent" or self.data, f"--data is required for {task}")
        _check(not self.ensemble or task in ENSEMBLE_TASKS,
               f"--ensemble: only ikea and renders average several models' predictions, not {task}")
        _check(not self.posterior_samples or task in ENSEMBLE_TASKS,
               f"--posterior_samples: only ikea and renders read pictures through the posterior, not {task}")
        _check(0 < self.threshold < 1, f"--threshold: {self.threshold} is not in (0, 1)")
        _check(task not in ("generation", "summary") or self.train_data,
               f"--train_data is required for {task} (the memorization check compares samples with it)")
        _check(task != "classes" or self.train_data,
               "--train_data is required for classes (the probe is fitted on its pictures)")
        _check(not self.photos or task == "classes", f"--photos: only classes reads it, not {task}")
        _check(not self.images or len(self.images) in (2, 3),
               f"--images: give 2 photos (interpolation) or 3 (also arithmetic), not {len(self.images)}")
        for name, low, high in (("batch_size", 1, None), ("seed", 0, None), ("max_records", 0, None),
                                ("posterior_samples", 0, 1000), ("samples", 2, None), ("steps", 2, 32),
                                ("unit_shapes", 1, 256), ("units", 1, 64)):
            value = getattr(self, name)
            if high is None:
                _check(value >= low, f"--{name}: {value} must be at least {low}")
            else:
                _check(low <= value <= high, f"--{name}: {value} is not in [{low}, {high}]")
        _check(self.svm_c > 0, f"--svm_c: {self.svm_c} must be positive")
        return self

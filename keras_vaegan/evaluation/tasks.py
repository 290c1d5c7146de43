"""The evaluation tasks: each takes an EvaluationConfig and returns a Result (metrics, table, figures).

A bad input raises EvaluationError naming the flag or file; progress goes to stderr as `evaluate: ...`.
"""

import dataclasses
import functools
import os
import sys

from keras_vaegan.evaluation.settings import EvaluationError
from vaegan_utils.cli import ProgressCounter

PRIOR_DRAWS = 32  # latent: the strips use the first three of these prior shapes that are not empty


@dataclasses.dataclass
class Result:
    """What a task measured: `metrics` for metrics.json, `table` (Markdown) and `figures` ({file name: uint8
    picture, or a function that writes the file at the path it is given})."""

    metrics: dict
    table: str
    figures: dict


def say(message):
    """A progress line on stderr."""
    print(f"evaluate: {message}", file=sys.stderr, flush=True)


def _load_model(config, need_encoder, path=None):
    from keras_vaegan.model_file import ModelFileError, has_encoder, load_trained_model

    path = path or config.model
    say(f"loading {path}")
    try:
        model = load_trained_model(path)
    except ModelFileError as error:
        raise EvaluationError(str(error))
    if need_encoder and not has_encoder(model):
        raise EvaluationError(f"{path}: is a 3D-GAN; this task reads photos, which needs a 3D-VAE-GAN")
    return model


@dataclasses.dataclass
class Ensemble:
    """The models whose mean prediction is scored: --model and --ensemble's .keras files, loaded, and its
    training checkpoints, restored in turn into a copy of --model when predicting. `names`: --ensemble's
    members as given, folders expanded to their checkpoints."""

    models: list
    checkpoints: list = dataclasses.field(default_factory=list)
    names: list = dataclasses.field(default_factory=list)

    @property
    def size(self):
        """How many models' predictions are averaged."""
        return len(self.models) + len(self.checkpoints)


def _load_ensemble(config):
    """--model's 3D-VAE-GAN and the members of --ensemble, which must read and make the same sizes."""
    from keras_vaegan.model_file import ModelFileError, training_checkpoints

    first = _load_model(config, need_encoder=True)
    ensemble = Ensemble([first])
    for path in config.ensemble:
        try:
            checkpoints = training_checkpoints(path)
        except ModelFileError as error:
            raise EvaluationError(f"--ensemble: {error}")
        if checkpoints is not None:
            ensemble.checkpoints.extend(checkpoints)
            ensemble.names.extend(checkpoints)
            continue
        model = _load_model(config, need_encoder=True, path=path)
        if (model.resolution, model.image_size) != (first.resolution, first.image_size):
            raise EvaluationError(
                f"--ensemble: {path} makes {model.resolution}^3 shapes from {model.image_size}x{model.image_size} "
                f"pictures, --model {first.resolution}^3 from {first.image_size}x{first.image_size}; the members "
                "of an ensemble must agree")
        ensemble.models.append(model)
        ensemble.names.append(path)
    if config.ensemble:
        say(f"each prediction is the mean of {ensemble.size} models' predictions")
    return ensemble


def _load_shapes(folder, flag, resolution):
    from keras_vaegan import data
    from keras_vaegan.evaluation.records import load_shapes

    try:
        shapes = load_shapes(folder, resolution)
    except data.DataError as error:
        raise EvaluationError(f"{flag}: {error}")
    _note_resampling(folder, shapes.stored_resolution, resolution)
    return shapes


def _load_renders(folder, flag, model, config):
    """The (picture, shape) records of `folder` for `model` (a seeded subset of --max_records), as
    records.load_renders; a bad file ends the run naming `flag`."""
    from keras_vaegan import data
    from keras_vaegan.evaluation.records import load_renders

    say(f"reading {folder}")
    try:
        renders = load_renders(folder, model.resolution, model.image_size, config.max_records, config.seed)
    except data.DataError as error:
        raise EvaluationError(f"{flag}: {error}")
    _note_resampling(folder, renders.stored_resolution, model.resolution)
    return renders


def _note_resampling(folder, stored_resolution, resolution):
    """Says so when the records of `folder` were resampled to the model's resolution."""
    if stored_resolution != resolution:
        say(f"note: {folder} holds {stored_resolution}^3 shapes and the model makes {resolution}^3: "
            f"the shapes are resampled to {resolution}^3 (occupied if any covered voxel is)")


def _predict(function, inputs, label, batch_size):
    import numpy as np

    progress = ProgressCounter(label, "items")
    outputs = []
    for start in range(0, len(inputs), batch_size):
        outputs.append(np.asarray(function(np.asarray(inputs[start : start + batch_size], np.float32))))
        progress(min(start + batch_size, len(inputs)), len(inputs))
    return np.concatenate(outputs)[..., 0]


def _members_note(ensemble, config):
    """Names the ensemble and the posterior draws in a table's heading ("" for one model at its posterior mean)."""
    notes = [f"the mean of {ensemble.size} models' predictions"] if ensemble.size > 1 else []
    if config.posterior_samples:
        notes.append(f"each prediction the mean of {config.posterior_samples} draws from the posterior")
    return f" (model: {'; '.join(notes)})" if notes else ""


def _members(ensemble, config):
    """Each model of `ensemble` in turn; checkpoints are restored into one copy of --model."""
    from keras_vaegan.model_file import ModelFileError, restore_weights

    yield from ensemble.models
    if ensemble.checkpoints:
        host = _load_model(config, need_encoder=True)
        for prefix in ensemble.checkpoints:
            say(f"restoring {prefix}")
            try:
                restore_weights(host, prefix, f"--model {config.model}")
            except ModelFileError as error:
                raise EvaluationError(f"--ensemble: {error}")
            yield host


def _reconstruct(ensemble, pictures, config):
    """Each picture's occupancy: the mean over the ensemble's models of their reconstruction of it."""
    import numpy as np

    total = None
    for number, model in enumerate(_members(ensemble, config), 1):
        label = "reconstructing" if ensemble.size == 1 else f"reconstructing ({number}/{ensemble.size})"
        reconstruct = functools.partial(model.reconstruct, samples=config.posterior_samples, seed=config.seed)
        predictions = _predict(reconstruct, pictures, label, config.batch_size).astype(np.float64)
        total = predictions if total is None else total + predictions
    return total / ensemble.size


def ikea_task(config):
    """The IKEA protocol; returns its Result."""
    from keras_vaegan.evaluation import ikea
    from vaegan_utils.images import resize_with_pad

    ensemble = _load_ensemble(config)
    model = ensemble.models[0]
    bench = _read_benchmark(config.data, "--data")
    classes = sorted({photo.class_name for photo in bench.photos})
    if len(classes) < 2:
        raise EvaluationError(
            f"--data: {config.data}: {len(bench.photos)} usable photos of {len(classes)} class(es); the per-class "
            "table needs photos of at least two classes")
    truth_size = bench.photos[0].truth.shape[0]
    say(f"{len(bench.photos)} photos of {len(classes)} classes, {len(bench.skipped)} files skipped; predictions "
        f"({model.resolution}^3) are resampled to the ground truth's {truth_size}^3 (volume-weighted mean)")
    pixels = [resize_with_pad(photo.pixels, model.image_size) for photo in bench.photos]
    predictions = _reconstruct(ensemble, pixels, config)
    references = ikea.ReferencePredictors(bench.library, bench.library_classes)
    rows = []
    for photo, prediction in zip(bench.photos, predictions):
        row = {"image": photo.image_path, "class": photo.class_name, "model_id": photo.model_id}
        row.update(ikea.score(ikea.resample_occupancy(prediction, truth_size), photo.truth, config.best_transform))
        for key, reference in (("mean_shape", references.mean_shape(photo.model_id)),
                               ("class_mean", references.class_mean_shape(photo.model_id, photo.class_name))):
            row[f"{key}_ap"] = None if reference is None else ikea.average_precision(reference, photo.truth)
            if config.best_transform:
                row[f"{key}_ap_best"] = None if reference is None else ikea.best_transform_ap(reference, photo.truth)[0]
        rows.append(row)
    ap = {"model": ikea.class_means(rows, "ap")}
    if config.best_transform:
        ap["model, best of 8 turns/mirrors"] = ikea.class_means(rows, "ap_best")
    heldout = _heldout_models(bench, config)
    if heldout is not None:
        unseen = [row for row in rows if row["model_id"] in heldout]
        say(f"{len(unseen)} photos show {len(heldout & {row['model_id'] for row in rows})} held-out models")
        if unseen:
            ap[f"model, photos of held-out models ({len(unseen)})"] = ikea.class_means(unseen, "ap")
            ap[f"class mean shape, the same {len(unseen)} photos"] = ikea.class_means(
                [row for row in unseen if row["class_mean_ap"] is not None], "class_mean_ap")
        for row in rows:
            row["heldout_model"] = row["model_id"] in heldout
    with_class_mean = [row for row in rows if row["class_mean_ap"] is not None]
    for name, key, scored in (("mean shape (all classes)", "mean_shape_ap", rows),
                              ("class mean shape (oracle on class)", "class_mean_ap", with_class_mean)):
        ap[name] = ikea.class_means(scored, key)
        if config.best_transform:
            ap[f"{name}, best of 8 turns/mirrors"] = ikea.class_means(scored, f"{key}_best")
    iou = {f"IoU at {t}": ikea.class_means(rows, f"iou@{t}") for t in ikea.IOU_THRESHOLDS}
    metrics = {
        "task": "ikea", "model": config.model, "ensemble": ensemble.names, "data": config.data,
        "layout": bench.layout,
        "photos": len(rows), "skipped": bench.skipped, "library_models": len(bench.library),
        "model_resolution": model.resolution, "truth_resolution": truth_size,
        "average_precision": ap, "iou": iou, "per_photo": rows,
    }
    table = (f"Average precision (x100) at {truth_size}^3 on {len(rows)} photos of {config.data}"
             f"{_members_note(ensemble, config)}:\n\n{ikea.markdown_table(ap, classes)}\n\n"
             f"IoU (x100) of the model's prediction:\n\n{ikea.markdown_table(iou, classes)}\n")
    figure = _best_and_worst([photo.pixels for photo in bench.photos], predictions,
                             [photo.truth for photo in bench.photos],
                             [os.path.basename(row["image"]) for row in rows], rows)
    return Result(metrics, table, {"ikea_examples.png": figure})


def _read_benchmark(folder, flag):
    """The IKEA benchmark folder given by `flag`, its skipped files said."""
    from keras_vaegan.evaluation import ikea_data
    from vaegan_utils.errors import LayoutError
    from vaegan_utils.readers import BadFile

    say(f"reading {folder}")
    try:
        bench = ikea_data.load_benchmark(folder, ProgressCounter("reading", "files"))
    except (LayoutError, BadFile) as error:
        raise EvaluationError(f"{flag}: {error}")
    for entry in bench.skipped:
        say(f"skipped {entry['file']}: {entry['reason']}")
    return bench


def _heldout_models(bench, config):
    """The model ids of --heldout_models (None without it); ids the dataset does not know end the run."""
    if not config.heldout_models:
        return None
    try:
        with open(config.heldout_models, encoding="utf-8") as handle:
            heldout = {line.strip() for line in handle if line.strip()}
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise EvaluationError(f"--heldout_models: {config.heldout_models}: cannot be read ({reason})")
    unknown = sorted(heldout - bench.model_ids)
    if unknown:
        raise EvaluationError(
            f"--heldout_models: {config.heldout_models}: {len(unknown)} ids are not models of {config.data} "
            f"(first: {unknown[0]})")
    return heldout


def _best_and_worst(pictures, predictions, truths, labels, rows):
    """Per class, the best and the worst picture by AP: picture, prediction, ground truth."""
    import numpy as np

    from keras_vaegan.evaluation import figures

    picked = []
    for name in sorted({row["class"] for row in rows}):
        members = [i for i, row in enumerate(rows) if row["class"] == name]
        best = max(members, key=lambda i: rows[i]["ap"])
        worst = min(members, key=lambda i: rows[i]["ap"])
        picked += [best] if best == worst else [best, worst]
    return figures.labelled_rows([
        [(pictures[i], f"{rows[i]['class']}: {labels[i]}"),
         (predictions[i], f"prediction, AP {rows[i]['ap'] * 100:.1f}"),
         (truths[i].astype(np.float32), "ground truth")]
        for i in picked
    ])


def renders_task(config):
    """Reconstruction of (picture, shape) records; returns its Result."""
    import numpy as np

    from keras_vaegan.evaluation import ikea

    ensemble = _load_ensemble(config)
    model = ensemble.models[0]
    renders = _load_renders(config.data, "--data", model, config)
    say(f"scoring {len(renders.grids)} of {renders.total} records")
    predictions = _reconstruct(ensemble, renders.images, config)
    total = renders.grids.sum(axis=0, dtype=np.float64)
    others = max(len(renders.grids) - 1, 1)
    rows = []
    for prediction, truth, class_name, source_id in zip(predictions, renders.grids, renders.class_names,
                                                         renders.source_ids):
        row = {"source_id": source_id, "class": class_name, **ikea.score(prediction, truth)}
        row["mean_shape_ap"] = ikea.average_precision((total - truth) / others, truth)  # the other records' mean
        rows.append(row)
    classes = sorted(set(renders.class_names))
    ap = {"model": ikea.class_means(rows, "ap"),
          "mean shape of the other records": ikea.class_means(rows, "mean_shape_ap")}
    iou = {f"IoU at {t}": ikea.class_means(rows, f"iou@{t}") for t in ikea.IOU_THRESHOLDS}
    metrics = {"task": "renders", "model": config.model, "ensemble": ensemble.names, "data": config.data,
               "records": renders.total, "scored": len(rows), "resolution": model.resolution,
               "average_precision": ap, "iou": iou, "per_record": rows}
    table = (f"Average precision (x100) at {model.resolution}^3 on {len(rows)} of the {renders.total} records of "
             f"{config.data}{_members_note(ensemble, config)}:\n\n{ikea.markdown_table(ap, classes)}\n\n"
             f"IoU (x100) of the model's prediction:\n\n{ikea.markdown_table(iou, classes)}\n")
    figure = _best_and_worst(renders.images, predictions, renders.grids, renders.source_ids, rows)
    return Result(metrics, table, {"renders_examples.png": figure})


def generation_task(config):
    """Samples against held-out and training shapes; returns its Result."""
    import numpy as np
    import tensorflow as tf

    from keras_vaegan.evaluation import generation

    model = _load_model(config, need_encoder=False)
    held_out = _load_shapes(config.data, "--data", model.resolution)
    train = _load_shapes(config.train_data, "--train_data", model.resolution)
    say(f"drawing {config.samples} samples from the prior")
    latent = model.sample_latent(config.samples, tf.constant([config.seed, 0], tf.int64)).numpy()
    samples = _predict(model.generator, latent, "generating", config.batch_size)
    say(f"comparing with {len(held_out.grids)} held-out and {len(train.grids)} training shapes")
    metrics = generation.generation_metrics(samples, held_out.grids, train.grids, threshold=config.threshold,
                                            seed=config.seed)
    picked = np.random.default_rng(config.seed).permutation(len(train.grids))[: config.samples]
    say(f"scoring {len(picked)} training shapes as if they were samples (the reference)")
    reference = generation.generation_metrics(train.grids[picked].astype(np.float32), held_out.grids, train.grids,
                                              threshold=config.threshold, seed=config.seed)
    table = (f"Generation quality of {config.model} ({config.samples} samples):\n\n"
             f"{generation.generation_table(metrics)}\n\nReference: {len(picked)} training shapes of "
             f"{config.train_data} scored as if they were the samples (a generator that reproduced its training "
             f"set):\n\n{generation.generation_table(reference)}")
    metrics = {"task": "generation", "model": config.model, "data": config.data, "train_data": config.train_data,
               **metrics, "training_shapes_reference": reference}

    def nearest_figure(path):
        generation.write_nearest_figure(samples, train.grids, path, threshold=config.threshold)

    return Result(metrics, table, {"nearest_training_shapes.png": nearest_figure})


def _class_mean_predictions(train, class_names):
    """For each class name, the mean occupancy of the training shapes of that class (the reference predictor
    that knows the class and nothing else); None where the training set has no shape of that class."""
    import numpy as np

    means = {name: train.grids[np.array(train.class_names) == name].mean(axis=0) for name in set(train.class_names)}
    return [means.get(name) for name in class_names]


def _reconstruction_scores(model, renders, train, config):
    """Mean IoU at config.threshold of the model's reconstructions of `renders` and of the class-mean
    reference, over the records whose class the training set has."""
    import numpy as np

    from keras_vaegan.evaluation import ikea

    predictions = _reconstruct(Ensemble([model]), renders.images, config)
    references = _class_mean_predictions(train, renders.class_names)
    known = [i for i, reference in enumerate(references) if reference is not None]
    return {
        "records": len(renders.grids),
        "iou": float(np.mean([ikea.iou(predictions[i], renders.grids[i], config.threshold) for i in known])),
        "class_mean_iou": float(np.mean([ikea.iou(references[i], renders.grids[i], config.threshold) for i in known])),
    }


def summary_task(config):
    """A run's numbers on its own kind of data: reconstruction on training and held-out records, and prior
    samples against the training shapes; returns its Result."""
    import numpy as np
    import tensorflow as tf

    from keras_vaegan.evaluation import generation
    from keras_vaegan.evaluation.shape_distance import iou_distances, occupancy

    model = _load_model(config, need_encoder=True)
    sets = {"training": _load_renders(config.train_data, "--train_data", model, config),
            "held-out": _load_renders(config.data, "--data", model, config)}
    train = sets["training"]
    reconstruction = {}
    for name, renders in sets.items():
        say(f"reconstructing {len(renders.grids)} {name} pictures")
        reconstruction[name] = _reconstruction_scores(model, renders, train, config)

    say(f"drawing {config.samples} samples from the prior")
    latent = model.sample_latent(config.samples, tf.constant([config.seed, 0], tf.int64)).numpy()
    samples = _predict(model.generator, latent, "generating", config.batch_size)
    _, first = np.unique(train.source_ids, return_index=True)
    shapes = train.grids[np.sort(first)]
    occupied = occupancy(samples, config.threshold, "samples")
    empty = ~occupied.reshape(len(occupied), -1).any(axis=1)
    nearest = 1.0 - iou_distances(occupied, occupancy(shapes, 0.5, "train")).min(axis=1)
    nearest[empty] = 0.0
    metrics = {
        "task": "summary", "model": config.model, "data": config.data, "train_data": config.train_data,
        "threshold": config.threshold, "reconstruction": reconstruction,
        "samples": {"count": len(samples), "empty": int(empty.sum()), "training_shapes": len(shapes),
                    "nearest_training_iou": [round(float(v), 4) for v in nearest],
                    "nearest_training_iou_median": float(np.median(nearest)),
                    "nearest_training_iou_at_least_0.4": int((nearest >= 0.4).sum())},
    }
    table = "\n".join([
        f"What {config.model} makes (IoU at {config.threshold:g}):", "",
        "| | model | class-mean reference |", "|---|---|---|",
        *(f"| reconstruction IoU, {len(sets[name].grids)} {name} pictures | {scores['iou']:.3f} | "
          f"{scores['class_mean_iou']:.3f} |" for name, scores in reconstruction.items()),
        "", f"| samples from the prior | {len(samples)} |", "|---|---|",
        f"| empty | {int(empty.sum())} |",
        f"| median IoU with the nearest of {len(shapes)} training shapes | {np.median(nearest):.3f} |",
        f"| samples with that IoU at least 0.4 | {int((nearest >= 0.4).sum())} |", ""])

    def nearest_figure(path):
        generation.write_nearest_figure(samples, shapes, path, count=len(samples), threshold=config.threshold)

    return Result(metrics, table, {"summary_nearest.png": nearest_figure})


def classify_task(config):
    """Discriminator features + linear SVM; returns its Result."""
    from keras_vaegan.evaluation import classify, figures

    model = _load_model(config, need_encoder=False)
    splits = {}
    for split in (config.train_split, config.test_split):
        flag = "--train_split" if split == config.train_split else "--test_split"
        folder = os.path.join(config.data, split)
        if not os.path.isdir(folder):
            raise EvaluationError(f"{flag}: {folder} is not a folder (--data must hold the split sub-folders)")
        splits[split] = _load_shapes(folder, flag, model.resolution)
    train, test = splits[config.train_split], splits[config.test_split]
    for shapes, flag in ((train, "--train_split"), (test, "--test_split")):
        if len(shapes.classes) < 2:
            raise EvaluationError(
                f"{flag}: {shapes.folder} holds {len(shapes.grids)} shapes of {len(shapes.classes)} class(es) "
                f"({', '.join(shapes.classes)}); classification needs at least two")
    unseen = sorted(set(test.classes) - set(train.classes))
    if unseen:
        raise EvaluationError(f"--test_split: classes {', '.join(unseen)} of {test.folder} are not in {train.folder}")
    results = {}
    for label, discriminator in (("trained", model.discriminator),
                                 ("untrained", classify.untrained_discriminator(model.resolution, config.seed))):
        train_features, test_features = (
            classify.discriminator_features(discriminator, shapes.grids, config.batch_size,
                                            ProgressCounter(f"features ({label} D, {name})", "shapes"))
            for name, shapes in (("train", train), ("test", test))
        )
        say(f"training a linear SVM on {train_features.shape[1]} features ({label} D) of {len(train.grids)} shapes")
        classifier = classify.train_classifier(train_features, train.class_names, config.svm_c, config.seed)
        results[label] = classify.classification_metrics(classifier, test_features, test.class_names, train.classes)
    result = results["trained"]
    metrics = {"task": "classify", "model": config.model, "data": config.data, "train_shapes": len(train.grids),
               "test_shapes": len(test.grids), "classes": train.classes, "features": int(train_features.shape[1]),
               "svm_c": config.svm_c, **result, "untrained_reference": results["untrained"]}
    lines = ["| class | test shapes | accuracy (x100) | untrained D (reference) |", "|---|---|---|---|"]
    for name, row in zip(train.classes, result["confusion"]):
        if sum(row):
            lines.append(f"| {name} | {sum(row)} | {result['per_class_accuracy'][name] * 100:.1f} | "
                         f"{results['untrained']['per_class_accuracy'][name] * 100:.1f} |")
    lines.append(f"| **all** | {len(test.grids)} | **{result['accuracy'] * 100:.1f}** | "
                 f"{results['untrained']['accuracy'] * 100:.1f} |")
    table = (f"Linear SVM on discriminator features, trained on {len(train.grids)} shapes of {train.folder}, "
             f"scored on {test.folder}; the reference column uses the features of an untrained discriminator "
             f"(seed {config.seed}):\n\n" + "\n".join(lines))
    title = f"test accuracy {result['accuracy'] * 100:.1f}% ({len(test.grids)} shapes)"
    picture = figures.confusion_picture(result["confusion"], train.classes, title)
    return Result(metrics, table, {"confusion.png": picture})


def classes_task(config):
    """A linear probe of the encoder's code, fitted on --train_data's pictures and scored on them
    (cross-validated), on --data's and on the photos of --photos, beside the same probe on an untrained
    encoder; returns its Result."""
    from keras_vaegan.evaluation import class_probe, figures
    from vaegan_utils.images import resize_with_pad

    model = _load_model(config, need_encoder=True)
    bench = _read_benchmark(config.photos, "--photos") if config.photos else None
    sets = {}
    for name, folder, flag in (("training", config.train_data, "--train_data"), ("held-out", config.data, "--data")):
        renders = _load_renders(folder, flag, model, config)
        sets[name] = (renders.images, list(renders.class_names))
    if bench:
        sets["photos"] = ([resize_with_pad(photo.pixels, model.image_size) for photo in bench.photos],
                          [photo.class_name for photo in bench.photos])
    train_names = sets["training"][1]
    classes = sorted(set(train_names))
    if len(classes) < 2 or class_probe.fewest_per_class(train_names) < 2:
        raise EvaluationError(f"--train_data: {config.train_data}: the probe needs pictures of at least two classes "
                              f"and two of each; the {len(train_names)} read name {', '.join(classes)}")
    for name, (pictures, names) in list(sets.items()):
        known = [i for i, class_name in enumerate(names) if class_name in classes]
        if len(known) < len(names):
            say(f"note: {len(names) - len(known)} {name} pictures are of classes the training pictures lack; "
                "they are not scored")
        if not known:
            flag = "--photos" if name == "photos" else "--data"
            raise EvaluationError(f"{flag}: none of its pictures is of a class of --train_data ({', '.join(classes)})")
        sets[name] = ([pictures[i] for i in known], [names[i] for i in known])
    results = {}
    for label, encoder in (("trained", model.encoder),
                           ("untrained", class_probe.untrained_encoder(model.image_size, model.latent_dim,
                                                                       config.seed))):
        codes = {name: class_probe.encoder_codes(encoder, pictures, config.batch_size,
                                                 ProgressCounter(f"codes ({label} E, {name})", "pictures"))
                 for name, (pictures, _) in sets.items()}
        say(f"fitting the probe on {len(train_names)} codes of the {label} encoder")
        others = {name: (codes[name], names) for name, (_, names) in sets.items() if name != "training"}
        results[label] = class_probe.probe_results(codes["training"], train_names, others, classes, config.seed)
    trained, untrained = results["trained"], results["untrained"]
    lines = ["| pictures | count | trained E | untrained E (reference) | most frequent training class "
             "(reference) |", "|---|---|---|---|---|"]
    for name, result in trained.items():
        lines.append(f"| {name}{' (cross-validated)' if name == 'training' else ''} | {result['pictures']} | "
                     f"**{result['accuracy'] * 100:.1f}** | {untrained[name]['accuracy'] * 100:.1f} | "
                     f"{result['majority_accuracy'] * 100:.1f} |")
    per_class = ["| class | " + " | ".join(trained) + " |", "|---|" + "---|" * len(trained)]
    for class_name in classes:
        cells = [f"{result['per_class_accuracy'][class_name] * 100:.1f}" if class_name in result["per_class_accuracy"]
                 else "" for result in trained.values()]
        per_class.append(f"| {class_name} | " + " | ".join(cells) + " |")
    table = (f"Class accuracy (x100) of a logistic regression on the encoder's code (posterior mean) of "
             f"{config.model}, fitted on {len(train_names)} pictures of {config.train_data}:\n\n"
             + "\n".join(lines) + "\n\nPer class, trained encoder:\n\n" + "\n".join(per_class) + "\n")
    metrics = {"task": "classes", "model": config.model, "train_data": config.train_data, "data": config.data,
               "photos": config.photos, "classes": classes, "probe": "logistic regression on standardized codes, "
               f"C={class_probe.PROBE_C}", "sets": trained, "untrained_reference": untrained}
    last = list(trained)[-1]
    title = f"{last}: accuracy {trained[last]['accuracy'] * 100:.1f}% ({trained[last]['pictures']} pictures)"
    picture = figures.confusion_picture(trained[last]["confusion"], classes, title)
    return Result(metrics, table, {"class_confusion.png": picture})


def latent_task(config):
    """Interpolation, arithmetic and first-layer units; returns its Result."""
    import numpy as np
    import tensorflow as tf

    from keras_vaegan.evaluation import figures, latent
    from vaegan_utils.images import ImageError, load_image

    model = _load_model(config, need_encoder=bool(config.images))
    if config.images:
        try:
            photos = np.stack([load_image(path, model.image_size) for path in config.images])
        except ImageError as error:
            raise EvaluationError(f"--images: {error}")
        codes = model.encode(photos)[0].numpy()
        names = [os.path.basename(path) for path in config.images]
    generate = lambda z: _predict(model.generator, z, "generating", config.batch_size)  # noqa: E731
    if not config.images:
        draws = model.sample_latent(PRIOR_DRAWS, tf.constant([config.seed, 2], tf.int64)).numpy()
        filled = [i for i, grid in enumerate(generate(draws)) if (grid > config.threshold).any()]
        if len(filled) < 3:
            say(f"note: only {len(filled)} of {PRIOR_DRAWS} prior shapes are not empty; showing the first draws")
            filled = list(range(3))
        codes = draws[filled[:3]]
        names = [f"z{i} (seed {config.seed})" for i in filled[:3]]
    strip = generate(latent.interpolate(codes[0], codes[1], config.steps))
    labels = [names[0]] + [""] * (config.steps - 2) + [names[1]]
    pictures = {"interpolation.png": figures.labelled_rows([list(zip(strip, labels))])}
    metrics = {"task": "latent", "model": config.model, "sources": names, "interpolation_steps": config.steps,
               "interpolation_occupancy": [float((g > config.threshold).mean()) for g in strip]}
    if len(codes) == 3:
        shapes = generate(latent.arithmetic(*codes))
        labels = [f"a: {names[0]}", f"b: {names[1]}", f"c: {names[2]}", "a - b + c"]
        pictures["arithmetic.png"] = figures.labelled_rows([list(zip(shapes, labels))])
    say(f"switching off each of the generator's {model.generator.blocks[0].filters} first-layer units")
    unit_latent = model.sample_latent(config.unit_shapes, tf.constant([config.seed, 3], tf.int64)).numpy()
    effects = latent.unit_effects(model.generator, unit_latent, config.threshold,
                                 progress=ProgressCounter("units", "switched-off runs"))
    rows = latent.unit_rows(model.generator, unit_latent, effects, config.units, config.threshold)
    pictures["units.png"] = figures.labelled_rows([
        [(original, f"unit {unit}: shape {index}"), (ablated, f"unit {unit} off"),
         (original & ~ablated, f"voxels unit {unit} adds"), (ablated & ~original, f"voxels unit {unit} removes")]
        for unit, index, original, ablated in rows
    ])
    metrics["units"] = [{"unit": unit, "shape": index, "voxels_added": int((original & ~ablated).sum()),
                         "voxels_removed": int((ablated & ~original).sum())} for unit, index, original, ablated in rows]
    if not effects.any():
        say(f"note: switching off single units changed no voxel of the {config.unit_shapes} shapes (at --threshold)")
    table = (f"First-layer units of the generator that change most voxels of {config.unit_shapes} prior shapes "
             "when switched off:\n\n"
             "| unit | shape | voxels it adds | voxels it removes |\n|---|---|---|---|\n"
             + "\n".join(f"| {u['unit']} | {u['shape']} | {u['voxels_added']} | {u['voxels_removed']} |"
                         for u in metrics["units"]))
    return Result(metrics, table, pictures)


TASKS = {"ikea": ikea_task, "renders": renders_task, "generation": generation_task, "classify": classify_task,
         "classes": classes_task, "latent": latent_task, "summary": summary_task}


def run_task(task, config):
    """Validates `config` for `task` and runs it; returns its Result."""
    return TASKS[task](config.validate(task))

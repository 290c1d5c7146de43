"""What `python -m export` does: SavedModel and TFLite files of a trained model, checked against Keras.

Everything is written into a staging folder beside `--out` and renamed into
place at the end, so a failed export leaves no partial output and an earlier
export in `--out` stays until the new one is complete.
"""

import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from export import inputs, report, saved_model, tflite
from export.edge import EdgeModel, float_ops, op_table
from export.xnnpack_generator import runs_entirely_on_xnnpack
from keras_vaegan.model_file import has_encoder, load_trained_model
from vaegan_utils.folders import unwritable_reason

FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8")
SAVED_MODEL_DIR = "saved_model"


class ExportError(ValueError):
    """An input of the export cannot be used; the message names the file or flag."""


def parse_formats(text):
    """'saved_model,tflite_fp32' -> a tuple of known formats in FORMATS order; ExportError on unknown ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ExportError(f"--formats: {', '.join(unknown) or 'empty'} (choose from {', '.join(FORMATS)})")
    return tuple(name for name in FORMATS if name in names)


def check_out(out):
    """ExportError unless `out` is new, empty or an earlier export, in a folder that can be written."""
    out = os.path.abspath(out)
    problem = unwritable_reason(out)
    if problem:
        raise ExportError(f"{out}: cannot be written ({problem})")
    if os.path.isdir(out) and os.listdir(out) and not os.path.exists(os.path.join(out, report.JSON_NAME)):
        raise ExportError(f"{out}: holds other files; give a new or empty folder, or an earlier export to replace")


def staging_folder(out):
    """A new empty folder beside `out`, named after this process; ExportError when it cannot be created."""
    out = os.path.abspath(out)
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
        return tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-{os.getpid()}-", dir=parent)
    except OSError as error:
        raise ExportError(f"{out}: cannot be written ({error.strerror or error})") from None


def remove_leftovers(out):
    """Deletes the staging folders and replaced exports that killed exports left beside `out`.

    Only those of processes that are gone: another export into `out` may be running.
    """
    out = os.path.abspath(out)
    parent, name = os.path.split(out)
    pattern = re.compile(rf"(?:\.{re.escape(name)}\.tmp-(\d+)-.*|{re.escape(name)}\.old-(\d+))")
    for entry in os.listdir(parent) if os.path.isdir(parent) else []:
        match = pattern.fullmatch(entry)
        if match and not process_exists(int(match.group(1) or match.group(2))):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def process_exists(pid):
    """Whether a process with this id runs (or is a zombie) on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def publish(staging, out):
    """Renames the finished staging folder to `out`, replacing an earlier export only now."""
    out = os.path.abspath(out)
    if os.path.exists(out):
        old = f"{out}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old)
    else:
        os.replace(staging, out)


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


class FixedInputs:
    """The parity batch (prior z, photos) and the int8 calibration inputs of one export."""

    def __init__(self, model, data_dir, calibration_samples, parity_samples, seed, int8):
        self.z = inputs.prior_latents(model, parity_samples, seed)
        self.calibration_z = inputs.prior_latents(model, calibration_samples, seed + 1)
        self.photos = self.pixels = self.calibration_pixels = None
        self.parity_text = f"{parity_samples} prior z"
        self.calibration_text = f"generator: {calibration_samples} prior z" if int8 else ""
        if has_encoder(model):
            self._add_photos(model, data_dir, calibration_samples, parity_samples, seed, int8)

    def _add_photos(self, model, data_dir, calibration_samples, parity_samples, seed, int8):
        if not data_dir:
            if int8:
                raise ExportError("--data_dir: tflite_int8 of a 3D-VAE-GAN calibrates on training photos; "
                                  "give the folder of the training records")
            self.photos = inputs.noise_photos(model.image_size, parity_samples, seed)
            self.parity_text += f" and {parity_samples} noise images (no --data_dir given)"
        else:
            photos = inputs.record_photos(data_dir, model, parity_samples + calibration_samples)
            self.photos = photos[:parity_samples]
            self.parity_text += f" and the first {len(self.photos)} training photos of {data_dir}"
            if int8:
                calibration_photos = photos[parity_samples:] or photos
                self.calibration_pixels = inputs.decode_photos(calibration_photos, model.image_size)
                means, _ = model.encoder(self.calibration_pixels, training=False)
                self.calibration_z = np.concatenate([self.calibration_z, keras.ops.convert_to_numpy(means)])
                self.calibration_text = (
                    f"encoder and reconstruct: {len(calibration_photos)} training photos of {data_dir}; "
                    f"generator: {calibration_samples} prior z and those photos' encoder means"
                )
        self.pixels = inputs.decode_photos(self.photos, model.image_size)


class KerasReference:
    """The Keras model's outputs on the fixed inputs."""

    def __init__(self, model, fixed):
        numpy = keras.ops.convert_to_numpy
        self.occupancy = numpy(model.generator(fixed.z, training=False))
        self.logit = numpy(model.discriminator(self.occupancy, training=False))
        if fixed.pixels is not None:
            mean, log_variance = model.encoder(fixed.pixels, training=False)
            self.moments = np.concatenate([numpy(mean), numpy(log_variance)], axis=-1)
            self.reconstruction = numpy(model.generator(mean, training=False))


def _entry(name, export_format, size, measured, **extra):
    entry = {"file": name, "format": export_format, "size_bytes": size, **measured, **extra}
    entry["target"] = report.target(entry)
    return entry


def check_saved_model(model, path, fixed, reference):
    """One report entry per signature: its outputs against the Keras model's."""
    loaded = tf.saved_model.load(path)
    size = _size(path)
    signatures = loaded.signatures
    results = {
        "generate": report.parity(reference.occupancy, signatures["generate"](z=tf.constant(fixed.z))["occupancy"]),
        "discriminate": report.parity(
            reference.logit, signatures["discriminate"](voxels=tf.constant(reference.occupancy))["logit"],
            occupancy=False,
        ),
    }
    sampled = signatures["sample"](batch_size=tf.constant(len(fixed.z)), seed=tf.constant(0, tf.int64))
    results["sample"] = report.parity(
        keras.ops.convert_to_numpy(model.generator(sampled["z"], training=False)), sampled["occupancy"]
    )
    if has_encoder(model):
        results["reconstruct"] = report.parity(
            reference.reconstruction, signatures["reconstruct"](images=tf.constant(fixed.photos))["occupancy"]
        )
        results["reconstruct_pixels"] = report.parity(
            reference.reconstruction, signatures["reconstruct_pixels"](pixels=tf.constant(fixed.pixels))["occupancy"]
        )
    return [
        _entry(f"{SAVED_MODEL_DIR}:{name}", "saved_model", size, measured, kind=name)
        for name, measured in sorted(results.items())
    ]


def check_tflite(path, kind, export_format, fixed, reference):
    """The report entry of one .tflite file, run with ai-edge-litert on the fixed inputs."""
    edge = EdgeModel(path)
    if kind == "generator":
        actual = np.stack([edge.run(z)["occupancy"] for z in fixed.z])
        measured = report.parity(reference.occupancy[..., 0], actual)
    elif kind == "encoder":
        outputs = [edge.run(pixels) for pixels in fixed.pixels]
        actual = np.stack([np.concatenate([o["mean"], o["log_variance"]]) for o in outputs])
        measured = report.parity(reference.moments, actual, occupancy=False)
    else:
        actual = np.stack([edge.run(pixels)["occupancy"] for pixels in fixed.pixels])
        measured = report.parity(reference.reconstruction[..., 0], actual)
    table = op_table(path)
    extra = {"kind": kind, "ops": table, "xnnpack_whole_graph": runs_entirely_on_xnnpack(path)}
    if export_format == "tflite_int8":
        extra["float_ops"] = float_ops(table)
    return _entry(os.path.basename(path), export_format, os.path.getsize(path), measured, **extra)


def _write(path, content):
    with open(path, "wb") as handle:
        handle.write(content)


def write_formats(model, staging, formats, fixed, reference, progress=None):
    """Writes and checks every requested format in `staging`; returns the report entries."""
    tflite_formats = [f for f in formats if f in tflite.QUANTIZATIONS]
    steps = ["saved_model"] * ("saved_model" in formats) + [
        (kind, f) for kind in tflite.kinds(model) for f in tflite_formats
    ]
    entries = []
    if "saved_model" in formats:
        path = os.path.join(staging, SAVED_MODEL_DIR)
        saved_model.write_saved_model(model, path)
        entries += check_saved_model(model, path, fixed, reference)
        if progress:
            progress(1, len(steps))
    calibration = {"generator": fixed.calibration_z, "encoder": fixed.calibration_pixels,
                   "reconstruct": fixed.calibration_pixels}
    for kind in tflite.kinds(model) if tflite_formats else ():
        kind_saved_model = os.path.join(staging, f".{kind}_saved_model")
        tflite.write_saved_model(model, kind, kind_saved_model)
        for export_format in tflite_formats:
            path = os.path.join(staging, tflite.file_name(kind, export_format))
            _write(path, tflite.convert(kind_saved_model, export_format, calibration[kind]))
            entries.append(check_tflite(path, kind, export_format, fixed, reference))
            if progress:
                progress(steps.index((kind, export_format)) + 1, len(steps))
        shutil.rmtree(kind_saved_model)
    return entries


def export_model(model_path, out, formats, data_dir=None, calibration_samples=100, parity_samples=8, seed=0,
                 progress=None):
    """Writes the requested formats of the model at `model_path` and their report into `out`; returns the report.

    Raises ExportError, keras_vaegan.model_file.ModelFileError (an unusable model file) or
    keras_vaegan.data.DataError (unusable records) before anything is written
    to `out`; on any failure the staging folder is removed. `progress(done, total)` follows the files.
    """
    check_out(out)
    remove_leftovers(out)
    model = load_trained_model(model_path)
    fixed = FixedInputs(model, data_dir, calibration_samples, parity_samples, seed, "tflite_int8" in formats)
    reference = KerasReference(model, fixed)
    staging = staging_folder(out)
    try:
        entries = write_formats(model, staging, formats, fixed, reference, progress)
        result = {
            "model": os.path.abspath(model_path),
            "model_type": "3D-VAE-GAN" if has_encoder(model) else "3D-GAN",
            "resolution": model.resolution,
            "latent_dim": model.latent_dim,
            "image_size": model.image_size if has_encoder(model) else None,
            "latent_prior": model.latent_prior,
            "latent_std": model.latent_std,
            "parity_inputs": fixed.parity_text,
            "calibration": fixed.calibration_text,
            "files": entries,
            "targets_met": all(e["target"]["met"] for e in entries if e["target"] is not None),
        }
        report.write_report(staging, result)
        publish(staging, out)
        return result
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)

"""TFLite files of a trained model: generator, encoder and reconstruct (encoder mean -> generator).

Every file takes a batch of one and has one signature:
  generator_<q>.tflite    z (1, L)               -> occupancy (1, R, R, R)
  encoder_<q>.tflite      pixels (1, S, S, 3)    -> mean (1, L), log_variance (1, L)
  reconstruct_<q>.tflite  pixels (1, S, S, 3)    -> occupancy (1, R, R, R), z (1, L)
with <q> in fp32 | fp16 (float16 weights) | int8 (post-training int8 with float
fallback, float32 input and output). Pixels are in [0, 1] as `keras_vaegan.data.decode_image`
makes them; occupancy is a probability per voxel, grid [x, y, z] with z up.
"""

import keras
import numpy as np
import tensorflow as tf

from export.xnnpack_generator import tflite_from_saved_model, xnnpack_friendly_generator
from keras_vaegan.model_file import has_encoder

QUANTIZATIONS = {"tflite_fp32": "float32", "tflite_fp16": "float16", "tflite_int8": "int8"}
SUFFIXES = {"tflite_fp32": "fp32", "tflite_fp16": "fp16", "tflite_int8": "int8"}


def kinds(model):
    """The TFLite files a model has: generator, and for a 3D-VAE-GAN encoder and reconstruct."""
    return ("generator", "encoder", "reconstruct") if has_encoder(model) else ("generator",)


def file_name(kind, export_format):
    return f"{kind}_{SUFFIXES[export_format]}.tflite"


def batch_one_model(model, kind):
    """A functional Keras model of one kind with a fixed batch of one and named outputs.

    The generator is the XNNPACK-friendly re-formulation (`export.xnnpack_generator`),
    which computes the same function from ops the TFLite CPU delegate runs.
    """
    if kind == "generator":
        z = keras.Input(batch_shape=(1, model.latent_dim), name="z")
        return keras.Model(z, {"occupancy": xnnpack_friendly_generator(model.generator)(z)})
    size = model.image_size
    pixels = keras.Input(batch_shape=(1, size, size, 3), name="pixels")
    mean, log_variance = model.encoder(pixels, training=False)
    if kind == "encoder":
        return keras.Model(pixels, {"mean": mean, "log_variance": log_variance})
    if kind == "reconstruct":
        return keras.Model(pixels, {"occupancy": xnnpack_friendly_generator(model.generator)(mean), "z": mean})
    raise ValueError(f"unknown TFLite kind {kind!r}")


def write_saved_model(model, kind, path):
    """The batch-one SavedModel of one kind at `path`, which every quantization converts from.

    The signature is given explicitly: by default Keras exports a free batch size, and the
    encoder's Flatten then leaves SHAPE/PACK ops that XNNPACK does not take.
    """
    batch_one = batch_one_model(model, kind)
    signature = [tf.TensorSpec(spec.shape, spec.dtype, name=spec.name) for spec in batch_one.inputs]
    batch_one.export(path, format="tf_saved_model", verbose=False, input_signature=signature)


def convert(saved_model, export_format, calibration=None):
    """The flatbuffer bytes of one file from its kind's SavedModel; int8 needs `calibration`, inputs (N, ...)."""
    representative = None
    if export_format == "tflite_int8":
        samples = np.asarray(calibration, "float32")
        representative = lambda: ([sample[None]] for sample in samples)  # noqa: E731
    return tflite_from_saved_model(saved_model, QUANTIZATIONS[export_format], representative)

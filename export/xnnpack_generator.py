"""The generator re-written from 2D ops that XNNPACK runs, and its TFLite conversion.

XNNPACK (the TFLite CPU delegate) never takes CONV_3D or CONV_3D_TRANSPOSE,
so a converted `Generator` runs on TFLite's slower built-in kernels. This
module builds the same function from FULLY_CONNECTED, TRANSPOSE_CONV,
SPLIT, STRIDED_SLICE, PAD, ADD, CONCATENATION, RESHAPE and LOGISTIC, with BatchNorm
(moving statistics) folded into kernels and biases, for a batch of one.

The re-arrangement. Keras' Conv3DTranspose (kernel K[kd, kh, kw, f, c],
stride 2) adds in[i] * K[k] to out[2 i + k - p] along every axis, with
p = 1 for padding "same" (kernel 4) and p = 0 for "valid". Along depth alone:

    out[d] = sum over (i, kd) with d = 2 i + kd - 1 of  T_kd(in[i]),

where T_kd is the 2D transposed convolution (kernel K[kd], stride 2, "same")
of one depth slice over (h, w). All four T_kd of all slices are ONE 2D
TRANSPOSE_CONV over the depth slices taken as a batch, with the four kd
kernels side by side as 4F output channels: A_kd[i] = T_kd(in[i]). Solving
d = 2 i + kd - 1 for even d = 2m (kd = 1, 3) and odd d = 2m + 1 (kd = 0, 2):

    out[2m]     = A_1[m] + A_3[m - 1]
    out[2m + 1] = A_2[m] + A_0[m + 1]      (A_kd[i] = 0 outside 0 <= i < D)

A_3 shifted down and A_0 shifted up are a STRIDED_SLICE and a zero PAD along the
batch axis. The even and odd planes are interleaved by reshaping each to
(D, 1, -1), concatenating on axis 1 and reshaping to (2D, 2H, 2W, F) (not
PACK, which XNNPACK leaves to TFLite). Every output gets exactly one A_1 or
A_2 term, so the folded bias rides on the A_1 and A_2 channels of the
transposed convolution and the A_0, A_3 channels get none: the zero padding
then stays zero.

The first block sees a 1^3 volume, so it is a dense layer: with "valid"
padding (64^3, 1 -> 4) out[d, h, w] = K[d, h, w] z, with "same" (32^3,
1 -> 2) out[d, h, w] = K[d + 1, h + 1, w + 1] z.

BatchNorm at inference is y = s x + (beta - s mean) with
s = gamma / sqrt(variance + epsilon): s scales the kernel's output channels.

Tensors between blocks are (D, H, W, C): the volume's first axis (x) is the
batch of 2D slices. The model's output is (1, R, R, R): the Generator's
(1, R, R, R, 1) probabilities without the channel axis.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_vaegan.layers import SERIALIZATION_PACKAGE

QUANTIZATIONS = ("float32", "float16", "int8")


def folded_kernel_and_bias(unit):
    """A ConvUnit's 3D kernel (kd, kh, kw, out, in) and bias (out,) with its BatchNorm (moving statistics) folded in."""
    kernel = unit.conv.kernel.numpy().astype("float64")
    filters = kernel.shape[3]
    bias = unit.conv.bias.numpy().astype("float64") if unit.conv.use_bias else np.zeros(filters)
    if unit.norm is not None:
        norm = unit.norm
        gamma = norm.gamma.numpy().astype("float64") if norm.scale else np.ones(filters)
        beta = norm.beta.numpy().astype("float64") if norm.center else np.zeros(filters)
        mean = norm.moving_mean.numpy().astype("float64")
        variance = norm.moving_variance.numpy().astype("float64")
        scale = gamma / np.sqrt(variance + norm.epsilon)
        kernel = kernel * scale[:, None]
        bias = (bias - mean) * scale + beta
    return kernel.astype("float32"), bias.astype("float32")


# Sub-pixel form: output phase r (0 even, 1 odd) of a stride-2, kernel-4, "same" transposed convolution
# reads the input at offsets -1, 0, +1 (3x3 taps t = 0, 1, 2) through kernel tap SUBPIXEL_TAPS[r][t].
SUBPIXEL_TAPS = ((3, 1, None), (None, 2, 0))
# SUBPIXEL_SELECT[t, r, k] = 1 where tap t of phase r is kernel tap k.
SUBPIXEL_SELECT = np.array(
    [[[float(taps[t] == k) for k in range(4)] for taps in SUBPIXEL_TAPS] for t in range(3)], "float32"
)
FORMS = ("transpose", "subpixel")


def subpixel_kernel(kernel):
    """A 3D kernel (kd, kh, kw, F, C) as a 3x3 CONV_2D kernel (3, 3, C, 16F), channels (rh, rw, kd, f):
    DEPTH_TO_SPACE(2) of its output is the stride-2 2D transposed convolution with the kd kernels as 4F channels."""
    _, _, _, filters, channels = kernel.shape
    spread = keras.ops.einsum("xry,zsw,dywfc->xzcrsdf", SUBPIXEL_SELECT, SUBPIXEL_SELECT, kernel)
    return keras.ops.reshape(spread, (3, 3, channels, 16 * filters))


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class DepthSlicedConvTranspose(keras.layers.Layer):
    """Conv3DTranspose(kernel 4, stride 2, "same") + activation on (D, H, W, C) depth slices -> (2D, 2H, 2W, F).

    One 2D convolution over the slices, then the depth phases summed and
    interleaved (see the module docstring). Weights: the 3D `kernel`
    (4, 4, 4, F, C) and `bias` (F,). `form`: "transpose", one TRANSPOSE_CONV
    with 4F output channels; "subpixel", one 3x3 CONV_2D with 16F output
    channels (2.25x the multiply-adds, zeros included) and DEPTH_TO_SPACE,
    which XNNPACK ran 2x faster for F = 1 (the last block: 4 output channels
    fill XNNPACK's vector tiles badly) and 1.4-1.6x slower for F = 64, 128.
    """

    def __init__(self, filters, activation="relu", form="transpose", **kwargs):
        super().__init__(**kwargs)
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, not {form!r}")
        self.filters = filters
        self.activation = activation
        self.form = form
        self.act = keras.activations.get(activation)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(4, 4, 4, self.filters, channels))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        self.built = True

    def _phases(self, slices):
        """All A_kd as (D, 2H, 2W, 4F), kd-major channels, bias on A_1 and A_2."""
        f, channels = self.filters, slices.shape[-1]
        zeros = keras.ops.zeros((f,), self.kernel.dtype)
        bias = keras.ops.concatenate([zeros, self.bias, self.bias, zeros])
        if self.form == "subpixel":
            spread = keras.ops.conv(slices, subpixel_kernel(self.kernel), strides=1, padding="same") + keras.ops.tile(bias, [4])
            return keras.ops.depth_to_space(spread, 2)
        # (kd, kh, kw, f, c) -> (kh, kw, kd * F + f, c): the four depth taps as output channel groups.
        kernel = keras.ops.reshape(keras.ops.transpose(self.kernel, (1, 2, 0, 3, 4)), (4, 4, 4 * f, channels))
        return keras.ops.conv_transpose(slices, kernel, strides=2, padding="same") + bias

    def call(self, slices):
        depth, height, width, _ = slices.shape
        f = self.filters
        a0, a1, a2, a3 = keras.ops.split(self._phases(slices), 4, axis=-1)
        no_pad = [[0, 0]] * 3
        even = self.act(a1 + keras.ops.pad(a3[: depth - 1], [[1, 0]] + no_pad))
        odd = self.act(a2 + keras.ops.pad(a0[1:], [[0, 1]] + no_pad))
        planes = [keras.ops.reshape(p, (depth, 1, 4 * height * width * f)) for p in (even, odd)]
        return keras.ops.reshape(keras.ops.concatenate(planes, axis=1), (2 * depth, 2 * height, 2 * width, f))

    def compute_output_shape(self, input_shape):
        depth, height, width, _ = input_shape
        return (2 * depth, 2 * height, 2 * width, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, activation=self.activation, form=self.form)
        return config


def _first_block_dense(unit):
    """The first block (on a 1^3 volume) as Dense weights (latent, D*H*W*F), bias, and its slice shape (D, H, W, F)."""
    kernel, bias = folded_kernel_and_bias(unit)
    if unit.conv.padding == "same":  # 1 -> 2: the taps 1 and 2 of every axis
        kernel = kernel[1:3, 1:3, 1:3]
    depth, height, width, filters, latent = kernel.shape
    dense_kernel = np.transpose(kernel, (4, 0, 1, 2, 3)).reshape(latent, -1)
    dense_bias = np.tile(bias, depth * height * width)
    return dense_kernel, dense_bias, (depth, height, width, filters)


def xnnpack_friendly_generator(generator):
    """A functional Keras model computing `generator(z, training=False)` from XNNPACK-friendly ops.

    Input z: (1, latent_dim) float32 (fixed batch of one); output: occupancy
    probabilities (1, R, R, R) float32, i.e. the Generator's (1, R, R, R, 1)
    without its channel axis. BatchNorm uses the moving statistics, folded
    into the weights (a snapshot: later training of `generator` is not seen).
    It computes in float32 whatever the global dtype policy.
    """
    if not generator.built:
        generator.build((1, generator.latent_dim))
    blocks = generator.blocks
    z = keras.Input(batch_shape=(1, generator.latent_dim), dtype="float32", name="z")
    dense_kernel, dense_bias, slice_shape = _first_block_dense(blocks[0])
    first = keras.layers.Dense(dense_kernel.shape[1], activation="relu", dtype="float32", name="block1")
    x = keras.ops.reshape(first(z), slice_shape)
    first.set_weights([dense_kernel, dense_bias])
    for i, unit in enumerate(blocks[1:], start=2):
        last = i == len(blocks)
        layer = DepthSlicedConvTranspose(
            unit.filters,
            activation="sigmoid" if last else "relu",
            form="subpixel" if last else "transpose",  # faster for its single output channel
            dtype="float32",
            name=f"block{i}",
        )
        x = layer(x)
        layer.set_weights(list(folded_kernel_and_bias(unit)))
    resolution = generator.resolution
    occupancy = keras.ops.reshape(x, (1, resolution, resolution, resolution))
    return keras.Model(z, occupancy, name=f"xnnpack_generator_{resolution}")


def convert_to_tflite(model, quantization="float32", representative_dataset=None, input_signature=None):
    """Converts a Keras model to TFLite flatbuffer bytes via a temporary SavedModel.

    `input_signature` (e.g. `[tf.TensorSpec((1, 200), tf.float32)]`) is passed
    to `model.export`; the default is the model's own input shapes. For
    `quantization` and `representative_dataset` see `tflite_from_saved_model`.
    """
    with tempfile.TemporaryDirectory() as folder:
        saved_model = os.path.join(folder, "saved_model")
        model.export(saved_model, format="tf_saved_model", verbose=False, input_signature=input_signature)
        return tflite_from_saved_model(saved_model, quantization, representative_dataset)


def tflite_from_saved_model(saved_model, quantization="float32", representative_dataset=None):
    """Converts a SavedModel folder to TFLite flatbuffer bytes.

    `quantization`: "float32"; "float16" (float16 weights); "int8" (post-training
    int8 with float fallback and float32 input/output), which needs
    `representative_dataset`: a callable returning an iterable of input lists,
    e.g. `lambda: ([z] for z in samples)`.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
    if quantization == "int8" and representative_dataset is None:
        raise ValueError("int8 quantization needs a representative_dataset")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.representative_dataset = representative_dataset
    return converter.convert()


def _interpreter(path_or_bytes, delegates=True, num_threads=1):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    source = {"model_content": path_or_bytes} if isinstance(path_or_bytes, bytes) else {"model_path": str(path_or_bytes)}
    return Interpreter(**source, num_threads=num_threads, experimental_op_resolver_type=resolver)


def tflite_op_types(path_or_bytes):
    """The sorted distinct op types (e.g. "CONV_3D", "TRANSPOSE_CONV") of a .tflite file or flatbuffer bytes."""
    interpreter = _interpreter(path_or_bytes, delegates=False)
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


def runs_entirely_on_xnnpack(path_or_bytes, num_threads=2):
    """True when ai_edge_litert's default XNNPACK delegate takes the whole graph of a .tflite model.

    After delegation the interpreter lists the original nodes followed by one
    node per delegated partition. The whole graph is delegated exactly when
    there is one such node, it produces all the graph's outputs and it reads
    only graph inputs and constants (tensors no node produces).
    """
    plain = _interpreter(path_or_bytes, delegates=False)
    original = len(plain._get_ops_details())
    interpreter = _interpreter(path_or_bytes, delegates=True, num_threads=num_threads)
    interpreter.allocate_tensors()
    nodes = interpreter._get_ops_details()
    partitions = nodes[original:]
    if len(partitions) != 1:
        return False
    produced = {t for node in nodes[:original] for t in node["outputs"]}
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    graph_outputs = {d["index"] for d in interpreter.get_output_details()}
    partition = partitions[0]
    reads_only_inputs = all(t in graph_inputs or t not in produced for t in partition["inputs"])
    return reads_only_inputs and graph_outputs <= set(partition["outputs"])

"""Shared building blocks: convolution, batch normalization, activation."""

import keras
import tensorflow as tf

from keras_vaegan import rearranged_conv

SERIALIZATION_PACKAGE = "keras_vaegan"


def build_sequentially(blocks, input_shape):
    """Builds blocks in order, each on the output shape of the one before."""
    shape = tuple(input_shape)
    for block in blocks:
        block.build(shape)
        shape = block.compute_output_shape(shape)
    return shape


class BlockStack:
    """Mixin: a model's ConvUnits as attributes `block1`, `block2`, ... and as `self.blocks`.

    Keras would track a plain list attribute for `.keras` files, but
    tf.train.Checkpoint does not follow Keras' tracked lists, so checkpoints
    would miss the weights and BatchNorm statistics: named attributes serve both.
    """

    def attach_blocks(self, blocks):
        for block in blocks:
            setattr(self, block.name, block)
        self._block_count = len(blocks)

    @property
    def blocks(self):
        return [getattr(self, f"block{i + 1}") for i in range(self._block_count)]


def build_once(model, input_shape):
    """Builds a sub-model unless it came built (e.g. from a `.keras` file)."""
    if not model.built:
        model.build(input_shape)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization whose training pass runs TensorFlow's fused kernel.

    Keras 3 normalizes with separate moment and arithmetic ops, upcast to
    float32 under mixed precision; the fused kernel (oneDNN on CPU, cuDNN on
    GPU) takes bfloat16/float16 inputs as they are. The variables and the
    moving-statistics update (biased variance) are Keras', so checkpoints and
    `.keras` files hold the same values either way. Inference, masks and
    synchronized statistics take the stock path.
    """

    def call(self, inputs, training=None, mask=None):
        rank = len(inputs.shape)
        fused = training and self.trainable and mask is None and not self.synchronized
        if not (fused and rank in (4, 5) and self.axis in (-1, rank - 1)):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, unbiased_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=tf.cast(self.gamma.value, tf.float32),
            offset=tf.cast(self.beta.value, tf.float32),
            mean=tf.zeros([0]),
            variance=tf.zeros([0]),
            epsilon=self.epsilon,
            data_format="NDHWC" if rank == 5 else "NHWC",
            is_training=True,
        )
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance = unbiased_variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


def leaky_relu_keeping_outputs(features, negative_slope):
    """tf.nn.leaky_relu whose gradient reads the outputs (negative_slope >= 0, as Keras requires)."""

    @tf.custom_gradient
    def leaky_relu(features):
        outputs = tf.nn.leaky_relu(features, alpha=negative_slope)

        def gradient(upstream):
            # A slope >= 0 keeps the input's sign or zero, so LeakyReluGrad reads the same on the outputs.
            return tf.raw_ops.LeakyReluGrad(gradients=upstream, features=outputs, alpha=negative_slope)

        return outputs, gradient

    return leaky_relu(features)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class OutputGradientLeakyReLU(keras.layers.LeakyReLU):
    """LeakyReLU whose training gradient reads its outputs, not its inputs.

    TensorFlow's gradient keeps the input (here BatchNorm's output) alive until
    the backward pass; the next convolution keeps the output anyway. Reading
    the output's sign instead frees one activation-sized tensor per layer: about
    a third of D's activation memory. Inference runs the stock op.
    """

    def call(self, inputs, training=None):
        if not training:
            return super().call(inputs)
        return leaky_relu_keeping_outputs(inputs, self.negative_slope)


def batch_norm(name, synchronized=False):
    """BatchNormalization with PyTorch's momentum/epsilon (eases weight import).

    `synchronized=True` computes statistics over the global batch under a
    tf.distribute strategy.
    """
    return FusedBatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=synchronized, name=name)


def _rearranged(layer, inputs, training, convolution):
    """`convolution`'s rearranged output of a Keras convolution layer in training (with its bias and
    activation), or None where rearranged_conv has nothing faster."""
    plain = layer.data_format == "channels_last" and set(layer.dilation_rate) == {1}
    plain = plain and getattr(layer, "groups", 1) == 1 and getattr(layer, "output_padding", None) is None
    if not (training and plain):
        return None
    output_spatial = layer.compute_output_shape(inputs.shape)[1:4]
    outputs = convolution(inputs, tf.convert_to_tensor(layer.kernel), output_spatial, layer.strides,
                          layer.padding.upper())
    if outputs is None:
        return None
    return layer.activation(outputs + layer.bias if layer.use_bias else outputs)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class RearrangedConv3DTranspose(keras.layers.Conv3DTranspose):
    """Keras' Conv3DTranspose; in training, one with a single filter or from a single position runs as
    rearranged_conv arranges it. Inference runs the stock op."""

    def call(self, inputs, training=None):
        outputs = _rearranged(self, inputs, training, rearranged_conv.conv3d_transpose)
        return super().call(inputs) if outputs is None else outputs


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class RearrangedConv3D(keras.layers.Conv3D):
    """Keras' Conv3D; in training, one from a single channel or to a single position runs as
    rearranged_conv arranges it. Inference runs the stock op."""

    def call(self, inputs, training=None):
        outputs = _rearranged(self, inputs, training, rearranged_conv.conv3d)
        return super().call(inputs) if outputs is None else outputs


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class ConvUnit(keras.layers.Layer):
    """conv (2D/3D, optionally transposed) -> BatchNorm -> ReLU or LeakyReLU(0.2).

    With `normalize=False, activation=None` it is a plain convolution: the last
    layer of every network. `spectral_norm=True` wraps the convolution in
    Keras' SpectralNormalization (Miyato et al. 2018).
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides,
        padding="same",
        rank=3,
        transpose=False,
        normalize=True,
        activation="relu",
        synchronized_batch_norm=False,
        spectral_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.rank = rank
        self.transpose = transpose
        self.normalize = normalize
        self.activation = activation
        self.synchronized_batch_norm = synchronized_batch_norm
        self.spectral_norm = spectral_norm
        conv_class = {
            (2, False): keras.layers.Conv2D,
            (3, False): RearrangedConv3D,
            (3, True): RearrangedConv3DTranspose,
        }[(rank, transpose)]
        self.conv = conv_class(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=not normalize,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="conv",
        )
        if spectral_norm:
            self.conv = keras.layers.SpectralNormalization(self.conv, name="spectral_conv")
        self.norm = batch_norm("bn", synchronized_batch_norm) if normalize else None
        self.act = {
            "relu": keras.layers.ReLU(name="relu"),
            "leaky_relu": OutputGradientLeakyReLU(negative_slope=0.2, name="leaky_relu"),
            None: None,
        }[activation]

    def build(self, input_shape):
        self.conv.build(input_shape)
        output_shape = self.conv.compute_output_shape(input_shape)
        if self.norm is not None:
            self.norm.build(output_shape)
        self.built = True

    def call(self, inputs, training=None):
        takes_training = self.spectral_norm or self.rank == 3  # Keras' Conv2D.call has no `training`
        x = self.conv(inputs, training=training) if takes_training else self.conv(inputs)
        if self.norm is not None:
            x = self.norm(x, training=training)
        if self.act is not None:
            x = self.act(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            rank=self.rank,
            transpose=self.transpose,
            normalize=self.normalize,
            activation=self.activation,
            synchronized_batch_norm=self.synchronized_batch_norm,
        )
        if self.spectral_norm:
            config["spectral_norm"] = True
        return config

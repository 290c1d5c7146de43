"""3D-GAN discriminator: occupancy grid -> real/fake logit (and features)."""

import keras

from keras_vaegan.layers import SERIALIZATION_PACKAGE, BlockStack, ConvUnit, build_sequentially


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class Discriminator(BlockStack, keras.Model):
    """Mirror of the generator: four Conv3D(k4, s2) + BatchNorm + LeakyReLU(0.2), then a logit.

    64^3: widths 64-128-256-512-1 (64 -> 32 -> 16 -> 8 -> 4 -> 1).
    32^3: widths 32-64-128-256-1 (32 -> 16 -> 8 -> 4 -> 2 -> 1).
    `norm`: "batch" (the paper), "spectral" (SpectralNormalization on every
    convolution, no BatchNorm) or "none".
    `call(x)` returns float32 logits (batch, 1); `call(x, return_features=True)`
    returns (logits, [four intermediate feature maps]) for shape classification.
    """

    def __init__(self, resolution=64, synchronized_batch_norm=False, norm="batch", **kwargs):
        super().__init__(**kwargs)
        self.resolution = resolution
        self.synchronized_batch_norm = synchronized_batch_norm
        self.norm = norm
        widths = [resolution * 2**i for i in range(4)] + [1]
        last_padding = "valid" if resolution == 64 else "same"
        blocks = [
            ConvUnit(
                filters,
                4,
                2,
                padding=last_padding if i == 4 else "same",
                normalize=i < 4 and norm == "batch",
                activation="leaky_relu" if i < 4 else None,
                synchronized_batch_norm=synchronized_batch_norm,
                spectral_norm=norm == "spectral",
                name=f"block{i + 1}",
            )
            for i, filters in enumerate(widths)
        ]
        self.attach_blocks(blocks)
        self.flatten = keras.layers.Flatten(name="flatten")
        self.logit = keras.layers.Activation("linear", dtype="float32", name="logit")

    def build(self, input_shape):
        shape = build_sequentially(self.blocks, input_shape)
        self.flatten.build(shape)
        self.logit.build(self.flatten.compute_output_shape(shape))
        self.built = True

    def call(self, voxels, training=None, return_features=False):
        x = voxels
        features = []
        for block in self.blocks[:-1]:
            x = block(x, training=training)
            features.append(x)
        logits = self.logit(self.flatten(self.blocks[-1](x, training=training)))
        return (logits, features) if return_features else logits

    def get_config(self):
        config = super().get_config()
        config.update(resolution=self.resolution, synchronized_batch_norm=self.synchronized_batch_norm, norm=self.norm)
        return config

"""3D-GAN and 3D-VAE-GAN (Wu et al., NIPS 2016) in Keras 3."""

__version__ = "0.1.0"

"""Export of trained 3D-GAN / 3D-VAE-GAN models (SavedModel, TFLite) and edge inference.

`python -m export` writes the files and their parity report; `python -m export.infer`
runs a `.tflite` file with ai-edge-litert alone. This package file imports nothing,
so the edge modules (edge, infer), which use only vaegan_utils, stay free of TensorFlow.
"""

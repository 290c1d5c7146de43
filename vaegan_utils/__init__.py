"""The TensorFlow-free base layer every other package builds on: flags and the one-line error
(`cli`, `errors`), atomic files (`files`), output folders (`folders`), photos as model input
(`images`), voxel pictures (`render`), meshes (`mesh`) and grid resampling (`resample`).

Nothing here imports TensorFlow or Keras (an import-linter contract in setup.cfg checks it), so
edge inference (`export.infer`) runs from an install with NumPy, Pillow and ai-edge-litert alone.
It is a package of its own, not part of `keras_vaegan`, because importing `keras_vaegan`
registers the Keras model classes and so loads TensorFlow.
"""

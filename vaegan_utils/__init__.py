"""The TensorFlow-free base layer every other package builds on: flags and the one-line error
(`cli`, `errors`), atomic files (`files`), output folders (`folders`), photos as model input
(`images`), voxel pictures (`render`), meshes (`mesh`), grid resampling (`resample`), the readers
of the files users bring (`readers`) and the IKEA dataset's folder layouts (`ikea_layout`).

Nothing here imports TensorFlow or Keras (an import-linter contract in setup.cfg checks it), so
edge inference (`export.infer`) runs from `pip install .[edge]`: NumPy, Pillow, scikit-image, absl-py
and ai-edge-litert, no TensorFlow.
It is a package of its own, not part of `keras_vaegan`, because importing `keras_vaegan`
registers the Keras model classes and so loads TensorFlow.
"""

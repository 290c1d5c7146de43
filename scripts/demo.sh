#!/usr/bin/env bash
# The README's first command: set up, write the embedded synthetic furniture dataset,
# train 3D-VAE-GAN at 32^3 for a few minutes on the CPU, and leave pictures and a 3D report
# (report/index.html) in runs/demo/; then export the model (SavedModel, TFLite fp32/fp16/int8)
# and read a real IKEA photo with the TFLite file alone (no TensorFlow in that process).
# Rerunning resumes an unfinished run and skips every finished step.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh" train

# 10 shapes per class: in the demo's minutes the model learns a small set far better
# (reconstruction IoU 0.44 vs 0.32 with 40 per class, same flags; README "The demo").
DATA=data/synthetic-32-demo
RUN=runs/demo
if [ ! -f "$DATA/classes.txt" ]; then
  python -m data_tools.synthetic --out "$DATA" --resolution 32 --shapes_per_class 10 --views_per_shape 2
fi
python train.py --flagfile=configs/demo_32.flags --data_dir="$DATA" --model_dir="$RUN"
# The 3D report (rewritten only when the model is newer than it).
if [ ! "$RUN/report/index.html" -nt "$RUN/model.keras" ]; then
  python -m keras_vaegan.report --model="$RUN/model.keras" --out="$RUN/report" --data_dir="$DATA"
fi

EXPORT=$RUN/export
# Re-export only when the model is newer than the export (a finished run is not rewritten).
if [ ! "$EXPORT/export_report.json" -nt "$RUN/model.keras" ]; then
  python -m export --model="$RUN/model.keras" --out="$EXPORT" \
    --formats=saved_model,tflite_fp32,tflite_fp16,tflite_int8 --data_dir="$DATA"
fi
PHOTO=../shared/data/ikea-sample/Images/00000002_001.jpg  # a chair of the IKEA benchmark
if [ ! -f "$PHOTO" ]; then
  PHOTO=$RUN/synthetic_photo.jpg
  echo "demo: ../shared/data/ikea-sample is not on this machine; reading a training photo of $DATA instead"
  python - "$DATA" "$PHOTO" <<'PYTHON'
import sys

import tensorflow as tf

from keras_vaegan import data

first = next(iter(tf.data.TFRecordDataset(data.find_records(sys.argv[1])).take(1)))
with open(sys.argv[2], "wb") as handle:
    handle.write(data.decode_example(first)["image"].numpy())
PYTHON
fi
python -m export.infer --model="$EXPORT/reconstruct_fp32.tflite" --image="$PHOTO" --out="$RUN/inference"
NAME=$(basename "${PHOTO%.*}")

echo
echo "Done. Look at:"
echo "  $DATA/preview.png          the synthetic training shapes"
echo "  $RUN/samples.png           shapes the generator makes from random z"
echo "  $RUN/reconstructions.png   training photos beside the shapes the encoder+generator read from them"
echo "  $RUN/report/index.html   the shapes in 3D: drag to turn them (meshes in $RUN/report/meshes/)"
echo "  tensorboard --logdir $RUN/logs   (curves, the same pictures over time, 3D shapes in the Mesh tab)"
echo "  $EXPORT/export_report.md   exported files: sizes, parity with Keras, TFLite op types"
echo "  $RUN/inference/$NAME.png   the photo $PHOTO beside the shape the TFLite file read from it"
echo "  $RUN/inference/$NAME.ply   that shape as a mesh (.npy: its occupancy grid)"

#!/usr/bin/env bash
# The README's first command: set up, write the embedded synthetic furniture dataset (and a held-out set of
# other shapes), train 3D-VAE-GAN at 32^3 for a few minutes on the CPU, and leave pictures and a 3D report
# (report/index.html) in runs/demo/; export the model (SavedModel, TFLite fp32/fp16/int8), read a real IKEA
# photo with the TFLite file alone (no TensorFlow in that process), and end with what the model makes, in numbers.
# Usage: bash scripts/demo.sh [--seed N]   (another seed trains into runs/demo-seedN)
# Rerunning resumes an unfinished run and skips every finished step.
set -euo pipefail
SEED=0
while (($#)); do
  case "$1" in
    --seed) SEED="${2:-}"; shift 2 || { echo "demo: --seed needs a value" >&2; exit 2; } ;;
    --seed=*) SEED="${1#--seed=}"; shift ;;
    *) echo "demo: unknown argument $1 (usage: bash scripts/demo.sh [--seed N])" >&2; exit 2 ;;
  esac
done
[[ "$SEED" =~ ^[0-9]+$ ]] || { echo "demo: --seed: $SEED is not a whole number >= 0" >&2; exit 2; }
source "$(dirname "$0")/setup_env.sh" train

# An easy set, as a few minutes on a CPU can learn: 10 shapes per class, the shapes of a class alike
# (--variety 0.3), 4 photos of each; the held-out set holds 4 other shapes per class (docs/experiments/demo.md).
DATA=data/demo-32-train
HELDOUT=data/demo-32-heldout
SHAPES="--resolution 32 --variety 0.3"
RUN=runs/demo
[ "$SEED" = 0 ] || RUN=runs/demo-seed$SEED
if [ ! -f "$DATA/classes.txt" ]; then
  python -m data_tools.synthetic --out "$DATA" $SHAPES --shapes_per_class 10 --views_per_shape 4
fi
if [ ! -f "$HELDOUT/classes.txt" ]; then
  python -m data_tools.synthetic --out "$HELDOUT" $SHAPES --first_shape 10 --shapes_per_class 4 --views_per_shape 2
fi
python train.py --flagfile=configs/demo_32.flags --data_dir="$DATA" --model_dir="$RUN" --seed="$SEED"
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
# What the model makes, in numbers (rewritten only when the model is newer).
if [ ! "$RUN/summary/table.md" -nt "$RUN/model.keras" ]; then
  python -m keras_vaegan.evaluate summary --model="$RUN/model.keras" --train_data="$DATA" --data="$HELDOUT" \
    --samples=16 --seed="$SEED" --out="$RUN/summary" >/dev/null
fi

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
echo "  $RUN/summary/summary_nearest.png   16 prior samples, each beside its nearest training shape"
echo
cat "$RUN/summary/table.md"

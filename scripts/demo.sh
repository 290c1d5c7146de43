#!/usr/bin/env bash
# The README's first command: set up, write the embedded synthetic furniture dataset,
# train 3D-VAE-GAN at 32^3 for a few minutes on the CPU, and leave pictures in runs/demo/.
# Rerunning resumes (or, once finished, only re-exports the pictures).
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"

DATA=data/synthetic-32
RUN=runs/demo
if [ ! -f "$DATA/classes.txt" ]; then
  python -m data_tools.synthetic --out "$DATA" --resolution 32 --shapes_per_class 40 --views_per_shape 2
fi
python train.py --flagfile=configs/demo_32.flags --data_dir="$DATA" --model_dir="$RUN"

echo
echo "Done. Look at:"
echo "  $DATA/preview.png          the synthetic training shapes"
echo "  $RUN/samples.png           shapes the generator makes from random z"
echo "  $RUN/reconstructions.png   training photos beside the shapes the encoder+generator read from them"
echo "  tensorboard --logdir $RUN/logs   (curves and the same pictures over time)"

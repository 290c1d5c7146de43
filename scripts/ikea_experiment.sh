#!/usr/bin/env bash
# The IKEA experiment end to end (docs/experiments/ikea.md): render the training set from the model library
# of PHOTOS_DIR (with the ModelNet10 shapes over Places365 rooms when ../shared/data holds them), train
# 3D-VAE-GAN at 32^3 on it, and score it on PHOTOS_DIR's photos with `keras_vaegan.evaluate ikea`.
# Usage: bash scripts/ikea_experiment.sh [--schedule joint|separate] PHOTOS_DIR OUT_DIR
# PHOTOS_DIR: a folder in the IKEA benchmark's layout, as ../shared/data/ikea-sample. OUT_DIR gets data/ (the
# renders), heldout/ (renders of the shapes left out), model/ (the run: checkpoints, model.keras), the scores:
# metrics.json, table.md, figures, and classes/: the encoder's class accuracy (`keras_vaegan.evaluate classes`).
# Rerunning resumes: a finished render is kept, training resumes from its last checkpoint, and the photos
# are scored again only when the model is newer than their metrics.json.
# Short runs (tests, smoke runs): IKEA_TRAIN_STEPS=N trains N steps (the separate schedule: N/2 of G and D
# alone first); IKEA_RENDER_FLAGS="--views_per_model 1 ..." adds flags to the render step.
set -euo pipefail
USAGE="usage: bash scripts/ikea_experiment.sh [--schedule joint|separate] PHOTOS_DIR OUT_DIR"
refuse() { echo "ikea_experiment: $1" >&2; exit 2; }

SCHEDULE=joint
POSITIONAL=()
while (($#)); do
  case "$1" in
    --schedule) (($# >= 2)) || refuse "--schedule needs a value ($USAGE)"; SCHEDULE=$2; shift 2 ;;
    --schedule=*) SCHEDULE="${1#--schedule=}"; shift ;;
    -h | --help) echo "$USAGE"; exit 0 ;;
    -*) refuse "unknown option $1 ($USAGE)" ;;
    *) POSITIONAL+=("$1"); shift ;;
  esac
done
case "$SCHEDULE" in
  joint) FLAGFILE=configs/ikea_32.flags ;;
  separate) FLAGFILE=configs/ikea_32_separate.flags ;;
  *) refuse "--schedule: $SCHEDULE is not joint or separate" ;;
esac
((${#POSITIONAL[@]} == 2)) || refuse "give PHOTOS_DIR and OUT_DIR ($USAGE)"
[ -d "${POSITIONAL[0]}" ] || refuse "PHOTOS_DIR: ${POSITIONAL[0]} is not a folder"
[ ! -e "${POSITIONAL[1]}" ] || [ -d "${POSITIONAL[1]}" ] || refuse "OUT_DIR: ${POSITIONAL[1]} is not a folder"
if [ -n "${IKEA_TRAIN_STEPS:-}" ] && ! [[ "$IKEA_TRAIN_STEPS" =~ ^[1-9][0-9]*$ && "$IKEA_TRAIN_STEPS" != 1 ]]; then
  refuse "IKEA_TRAIN_STEPS: $IKEA_TRAIN_STEPS is not a whole number >= 2"
fi
PHOTOS=$(realpath "${POSITIONAL[0]}")
OUT=$(realpath -m "${POSITIONAL[1]}")  # both made absolute: setup_env.sh changes to the checkout
source "$(dirname "$0")/setup_env.sh" train
python -c 'import sys; from vaegan_utils.ikea_layout import find_photos
try:
    find_photos(sys.argv[1])
except (ValueError, OSError) as error:
    sys.exit(f"ikea_experiment: PHOTOS_DIR: {error}")' "$PHOTOS" || exit 2

# 1. The training set (docs/experiments/ikea.md#the-training-set-and-the-photos).
DATA=$OUT/data
RENDER_ARGS=(--input "$PHOTOS")
SHAPES=../shared/data/modelnet10-32-train.npz
ROOMS=../shared/data/places365-rooms
if [ -f "$SHAPES" ]; then
  RENDER_ARGS+=(--shapes "$(realpath "$SHAPES")")
else
  echo "ikea_experiment: $SHAPES is not here: rendering the IKEA library and procedural shapes alone"
fi
if [ -d "$ROOMS" ]; then
  RENDER_ARGS+=(--backgrounds "$(realpath "$ROOMS")")
else
  echo "ikea_experiment: $ROOMS is not here: rendering over the default backdrops (scikit-image's photos)"
fi
read -r -a EXTRA_RENDER_FLAGS <<<"${IKEA_RENDER_FLAGS:-}"
RENDER_ARGS+=("${EXTRA_RENDER_FLAGS[@]}")
MARKER=$DATA/rendered_with.txt  # written last: the render finished, with these arguments (but --out)
if [ -f "$MARKER" ] && [ -f "$DATA/classes.txt" ]; then
  [ "$(cat "$MARKER")" = "$(printf '%s\n' "${RENDER_ARGS[@]}")" ] ||
    refuse "OUT_DIR: $DATA was rendered with other arguments (its rendered_with.txt); use another OUT_DIR"
  echo "ikea_experiment: $DATA is rendered already; keeping it"
else
  python -m data_tools.ikea_renders "${RENDER_ARGS[@]}" --out "$DATA"
  printf '%s\n' "${RENDER_ARGS[@]}" >"$MARKER"
fi

# 1b. Renders of the held-out library models and shapes, the same way: the class probe's held-out pictures.
HELDOUT=$OUT/heldout
if [ -f "$HELDOUT/rendered_with.txt" ] && [ "$(cat "$HELDOUT/rendered_with.txt")" = "$(cat "$MARKER")" ]; then
  echo "ikea_experiment: $HELDOUT is rendered already; keeping it"
else
  python -m data_tools.ikea_renders "${RENDER_ARGS[@]}" --split heldout --out "$HELDOUT"
  cp "$MARKER" "$HELDOUT/rendered_with.txt"
fi

# 2. Training (resumes from the newest checkpoint in $RUN; a finished run does nothing).
RUN=$OUT/model
TRAIN_ARGS=(--flagfile="$FLAGFILE" --data_dir="$DATA" --model_dir="$RUN")
if [ -n "${IKEA_TRAIN_STEPS:-}" ]; then
  TRAIN_ARGS+=(--train_steps="$IKEA_TRAIN_STEPS")
  if [ "$SCHEDULE" = separate ]; then TRAIN_ARGS+=(--pretrain_steps=$((IKEA_TRAIN_STEPS / 2))); fi
fi
python train.py "${TRAIN_ARGS[@]}"
[ -f "$RUN/model.keras" ] || { echo "ikea_experiment: training stopped before its end; rerun to resume" >&2; exit 1; }

# 3. The scores on the photos, and on the photos of the library models left out of training on their own.
if [ ! "$OUT/metrics.json" -nt "$RUN/model.keras" ]; then
  python -m keras_vaegan.evaluate ikea --model="$RUN/model.keras" --data="$PHOTOS" \
    --heldout_models="$DATA/heldout_models.txt" --best_transform --out="$OUT" >/dev/null
fi

# 4. How much of the class the encoder's code holds: training renders, held-out renders, the photos.
if [ ! "$OUT/classes/metrics.json" -nt "$RUN/model.keras" ]; then
  python -m keras_vaegan.evaluate classes --model="$RUN/model.keras" --train_data="$DATA" --data="$HELDOUT" \
    --photos="$PHOTOS" --out="$OUT/classes" >/dev/null
fi

echo
echo "Done ($SCHEDULE schedule). Look at:"
echo "  $OUT/table.md       average precision per class on the photos of $PHOTOS, beside the mean shapes"
echo "  $OUT/metrics.json   the same and more (IoU, held-out models' photos), for scripts"
echo "  $OUT/classes/table.md   the encoder's class accuracy (linear probe) on renders and photos"
echo "  $RUN/reconstructions.png   training pictures beside the shapes the model reads from them"
echo "  $DATA/preview.png   the first training pictures"
echo
cat "$OUT/table.md"

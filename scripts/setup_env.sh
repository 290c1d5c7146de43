#!/usr/bin/env bash
# Shared set-up of the README's two commands: system packages, .venv, the package.
# Idempotent: every step is skipped when already done. Usage: source scripts/setup_env.sh [extras]
# (extras of setup.cfg: edge, train, data, all or dev; without one, the TensorFlow-free base install).
# KERAS_VAEGAN_VENV=DIR uses the environment in DIR as it is, installing nothing into it (one made by
# hand, or the one running the tests); without it, .venv in the checkout is made and kept up to date.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"
PYTHON="${PYTHON:-python3}"

need_apt=()
# open3d (in the data extra) imports only with libusb; its offscreen renderer needs Vulkan (Mesa's software driver).
case "$EXTRAS" in
  data | all | dev)
    for pkg in libusb-1.0-0 libvulkan1 mesa-vulkan-drivers; do
      dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
    done
    ;;
esac
# train.py re-executes itself on jemalloc (vaegan_utils.allocator): about 100 MB less memory at 64^3.
case "$EXTRAS" in
  train | all | dev) dpkg -s libjemalloc2 >/dev/null 2>&1 || need_apt+=(libjemalloc2) ;;
esac
if [ -z "${KERAS_VAEGAN_VENV:-}" ]; then
  "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)
fi
# The browser tests (tests/test_browser.py, -m large) open the report and TensorBoard in headless Chromium.
if [ "$EXTRAS" = dev ] && ! command -v chromium >/dev/null 2>&1; then need_apt+=(chromium); fi
if ((${#need_apt[@]})); then
  echo "setup: installing system packages: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

VENV="${KERAS_VAEGAN_VENV:-$ROOT/.venv}"
if [ -z "${KERAS_VAEGAN_VENV:-}" ]; then
  [ -x "$VENV/bin/python" ] || { echo "setup: creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  stamp="$VENV/.installed-$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-${EXTRAS:-base}"
  if [ ! -f "$stamp" ]; then
    echo "setup: installing keras-vaegan${EXTRAS:+[$EXTRAS]} into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT${EXTRAS:+[$EXTRAS]}"
    touch "$stamp"
  fi
elif [ ! -x "$VENV/bin/python" ]; then
  echo "setup: KERAS_VAEGAN_VENV=$VENV holds no bin/python" >&2
  exit 2
fi
export PATH="$VENV/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
cd "$ROOT"

#!/usr/bin/env bash
# The README's second command: set up (as demo.sh does), then the default test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m large`.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh" dev
exec python -m pytest "$@"

#!/usr/bin/env bash
# The README's second command: set up (as demo.sh does), then the default test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m large`. The tests run in one worker per core,
# each test file in one worker (its module fixtures built once); `-n 0` runs them in this process instead.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh" dev
exec python -m pytest -n auto --dist loadfile "$@"

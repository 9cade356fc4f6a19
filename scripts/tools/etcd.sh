#!/usr/bin/env bash
# Prints the path of an etcd that supports watch-progress requests (3.5.13+),
# which kube-apiserver needs to serve streaming lists: without it, clients of
# recent client-go (kwok) fall back after retries and react tens of seconds
# late. Order: $KUBEBUILDER_ASSETS/etcd -> cache -> build from the Go module
# proxy. (Debian's etcd-server is 3.4.23, too old.)
source "$(dirname "$0")/lib.sh"
ETCD_VERSION="${ETCD_VERSION:-v3.5.21}"
OUT="$TOOLS_CACHE/etcd/$ETCD_VERSION/etcd"
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then printf '%s\n' "$KUBEBUILDER_ASSETS/etcd"; exit 0; fi
if [ -x "$OUT" ]; then printf '%s\n' "$OUT"; exit 0; fi
command -v go >/dev/null || { log "error: no etcd in KUBEBUILDER_ASSETS or $OUT, and no Go toolchain to build it"; exit 1; }
log "building etcd $ETCD_VERSION from the Go module proxy (first time only: 2-5 minutes)"
WORK="$TOOLS_CACHE/etcd/$ETCD_VERSION/src"
mkdir -p "$WORK"
cd "$WORK"
# A throwaway module: etcd's own go.mod has replace directives, so `go install` refuses it.
printf 'module etcdbuild\n\ngo 1.23\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > go.mod
printf '//go:build tools\n\npackage etcdbuild\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
go mod tidy >&2
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT.tmp" go.etcd.io/etcd/server/v3 >&2
mv "$OUT.tmp" "$OUT"
printf '%s\n' "$OUT"

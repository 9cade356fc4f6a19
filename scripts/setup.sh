#!/usr/bin/env bash
# Installs what the tests and `npm start` need on a fresh Debian machine of
# this kind, reusing what is already there: Debian packages, node modules and
# the tools (Temporal dev server and test server) in the cache outside the
# checkout. Safe to run again; prints what it does.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages behind the sandbox (see scripts/sandbox) and the tool venv.
APT_PACKAGES=(git openssh-client python3-venv openssl busybox-static docker.io docker-registry postgresql redis-server exim4-daemon-light prometheus influxdb graphite-carbon graphite-web gunicorn chromium awscli gzip zstd)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  # Packages whose services would start on install must not take the sandbox's ports:
  # policy-rc.d stops Debian maintainer scripts from starting them.
  if [ "$(id -u)" = 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  if [ "$(id -u)" = 0 ]; then
    echo "setup: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null || {
      apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
    # Exim (the sandbox's mail server, started on its own ports) must not become the machine's
    # mail daemon on port 25 at the next boot either: only when this run installed it.
    if [[ " ${missing[*]} " == *" exim4-daemon-light "* ]] && [ -x /etc/init.d/exim4 ]; then
      update-rc.d exim4 disable >/dev/null 2>&1 || true
      # On a machine with an init system the install may have started it anyway: stop that one.
      invoke-rc.d exim4 stop >/dev/null 2>&1 || true
    fi
  else
    echo "setup: missing Debian packages ${missing[*]}: run as root or install them (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund >/dev/null
fi

echo "setup: temporal CLI      $(bash scripts/tools/temporal.sh cli)"
echo "setup: test server       $(bash scripts/tools/temporal.sh test-server)"

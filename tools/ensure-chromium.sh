#!/usr/bin/env bash
# Headless Chromium for the dashboard's browser test (tests/browser/), from Debian's packages.
# Does nothing when /usr/bin/chromium is already installed. Needs root (as `make test` has here).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-chromium: /usr/bin/chromium is missing and this is not root; install Debian's 'chromium' package" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium

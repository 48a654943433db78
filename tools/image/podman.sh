#!/usr/bin/env bash
# podman with the settings in tools/image/containers.conf (runc, cgroupfs, no default ulimits).
set -euo pipefail
export CONTAINERS_CONF="${CONTAINERS_CONF:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf}"
exec podman "$@"

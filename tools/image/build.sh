#!/usr/bin/env bash
# Builds the worker image with podman: `make image`. IMAGE names it (default
# localhost/property-analytics:local, the name docker-compose.yml gives it).
#
# BASE_IMAGE: the image to build on. Unset: the official Python image when a registry serves
# it, else the local Debian one (tools/image/base.sh builds it once, cached under .local/image/).
# The Python packages come from the package index pip uses on this machine: its index URLs and
# CA bundle are read from pip's environment and configuration here, never written in the repo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

IMAGE="${IMAGE:-localhost/property-analytics:local}"
DEFAULT_BASE=python:3.11-slim
LOCAL_BASE_IMAGE="${LOCAL_BASE_IMAGE:-localhost/debian-py:bookworm}"
export LOCAL_BASE_IMAGE
PODMAN=(bash tools/image/podman.sh)

base="${BASE_IMAGE:-}"
if [ -z "$base" ]; then
  if "${PODMAN[@]}" image exists "$DEFAULT_BASE" \
     || timeout 120 "${PODMAN[@]}" pull -q "$DEFAULT_BASE" >/dev/null 2>&1; then
    base="$DEFAULT_BASE"
  else
    echo "image: $DEFAULT_BASE cannot be pulled here; building on $LOCAL_BASE_IMAGE"
    bash tools/image/base.sh
    base="$LOCAL_BASE_IMAGE"
  fi
fi

# pip's own settings on this machine: environment first, then its configuration files.
pip_cmd=(python3 -m pip)
[ -x .venv/bin/pip ] && pip_cmd=(.venv/bin/pip)
pip_setting() {  # pip_setting ENV_NAME KEY...: the environment variable, else the first key set
  local env_name="$1" key value
  shift
  if [ -n "${!env_name:-}" ]; then
    printf '%s' "${!env_name}"
    return
  fi
  for key in "$@"; do
    if value="$("${pip_cmd[@]}" config get "$key" 2>/dev/null)" && [ -n "$value" ]; then
      printf '%s' "$value"
      return
    fi
  done
}
index="$(pip_setting PIP_INDEX_URL install.index-url global.index-url)"
extra="$(pip_setting PIP_EXTRA_INDEX_URL install.extra-index-url global.extra-index-url)"
cert="$(pip_setting PIP_CERT install.cert global.cert)"

args=(--format docker --build-arg "BASE_IMAGE=$base" -t "$IMAGE")
[ -n "$index" ] && args+=(--build-arg "PIP_INDEX_URL=$index")
[ -n "$extra" ] && args+=(--build-arg "PIP_EXTRA_INDEX_URL=$extra")
[ -n "$cert" ] && [ -s "$cert" ] && args+=(--secret "id=pip_cert,src=$cert")

previous="$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
echo "image: building $IMAGE on $base"
"${PODMAN[@]}" build "${args[@]}" .
# The image this build replaced, now untagged: removed unless a container still uses it.
current="$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE")"
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  "${PODMAN[@]}" rmi "$previous" >/dev/null 2>&1 || true
fi
# The builder stages of earlier builds, untagged: all but the newest (the next build's cache).
"${PODMAN[@]}" images -q --no-trunc --sort created \
    --filter dangling=true --filter label=property-analytics.stage=builder \
  | tail -n +2 | xargs -r "${PODMAN[@]}" rmi >/dev/null 2>&1 || true

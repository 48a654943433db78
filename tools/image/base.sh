#!/usr/bin/env bash
# The local base image for machines that reach no container registry: Debian bookworm
# (minbase) with python3 and python3-venv, built with debootstrap from the Debian mirror apt
# uses here, then imported into podman as $LOCAL_BASE_IMAGE. The root file system is kept as a
# tarball under .local/image/, so a second machine state (an image store wiped, a new clone
# with .local/ copied) only imports it again. Needs root, debootstrap and podman
# (`make system-deps`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

LOCAL_BASE_IMAGE="${LOCAL_BASE_IMAGE:-localhost/debian-py:bookworm}"
SUITE=bookworm
CACHE_DIR=.local/image
TARBALL="$CACHE_DIR/debian-py-$SUITE.tar"
PODMAN=(bash tools/image/podman.sh)

if "${PODMAN[@]}" image exists "$LOCAL_BASE_IMAGE"; then
  exit 0
fi

if [ ! -s "$TARBALL" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "image-base: debootstrap needs root; run as root or pass BASE_IMAGE=<an image with python3 -m venv>" >&2
    exit 1
  fi
  # The mirror apt uses for this suite (none found: debootstrap's default).
  mirror="$(apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 2>/dev/null \
    | awk -v s="$SUITE" '$1 == s { print $2; exit }')"
  mkdir -p "$CACHE_DIR"
  rootfs="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs" "$TARBALL.tmp"' EXIT
  echo "image-base: debootstrap $SUITE into $rootfs${mirror:+ from $mirror}"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$rootfs" ${mirror:+"$mirror"} >"$CACHE_DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
  # apt's package lists and caches are not needed at run time.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
fi

echo "image-base: importing $TARBALL as $LOCAL_BASE_IMAGE"
"${PODMAN[@]}" import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' "$TARBALL" "$LOCAL_BASE_IMAGE" >/dev/null

#!/bin/sh
# pip install inside the image build (Dockerfile): the CA bundle from the build secret
# `pip_cert` when one was given, PIP_INDEX_URL / PIP_EXTRA_INDEX_URL only when not empty.
set -eu
if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi
[ -n "${PIP_INDEX_URL:-}" ] || unset PIP_INDEX_URL
[ -n "${PIP_EXTRA_INDEX_URL:-}" ] || unset PIP_EXTRA_INDEX_URL
exec pip install "$@"

# syntax=docker/dockerfile:1
# Property analytics worker image.
#   make image                        # podman; builds a local Debian base when no registry answers
#   docker build -t property-analytics .
#   docker run -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 -e API_TOKEN=... -p 6066:6066 property-analytics
# On 0.0.0.0 a worker refuses to start without API_TOKEN (or ALLOW_UNAUTHENTICATED_HTTP=true).
#
# BASE_IMAGE is any image with `python3 -m venv` and `useradd` (Python 3.11 or 3.12): the
# official Python image by default, or the Debian bookworm one `make image` builds with
# debootstrap (tools/image/base.sh) on machines that reach no registry.
ARG BASE_IMAGE=python:3.11-slim

# --- builder: install the package and its pinned dependencies into a venv ----------
FROM ${BASE_IMAGE} AS builder
# So that tools/image/build.sh can tell this stage's leftover images from any others.
LABEL property-analytics.stage=builder
# The package index to install from (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL build args; unset: pip's
# default). A CA bundle for it, when it needs one, comes as the build secret `pip_cert`.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first so source edits do not download them again.
COPY pyproject.toml README.md ./
COPY tools/image/pip.sh /usr/local/bin/pip-install
RUN --mount=type=secret,id=pip_cert \
    mkdir -p app && touch app/__init__.py && pip-install . && pip uninstall -y property-analytics
COPY app ./app
RUN --mount=type=secret,id=pip_cert pip-install --no-deps .

# --- runtime -------------------------------------------------------------------------
FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 10001 --user-group app \
 && mkdir /data && chown app:app /data
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WORKER_DATA_DIR=/data \
    WORKER_WEB_HOST=0.0.0.0 \
    WORKER_WEB_PORT=6066
USER app
WORKDIR /home/app
VOLUME /data
EXPOSE 6066
# Healthy = ready: partitions assigned, tables recovered, commits not stalled on the brokers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('WORKER_WEB_PORT', '6066'), timeout=2)"]
# faust is PID 1 (exec form, no shell): SIGTERM reaches it and it commits, leaves the group
# and exits 0. It starts no child processes, so there is nothing for an init to reap.
STOPSIGNAL SIGTERM
CMD ["faust", "-A", "app.main", "worker", "-l", "info"]

# Property analytics worker image.
#   docker build -t property-analytics .
#   docker run -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 -e API_TOKEN=... -p 6066:6066 property-analytics
# On 0.0.0.0 a worker refuses to start without API_TOKEN (or ALLOW_UNAUTHENTICATED_HTTP=true).

# --- builder: install the package and its pinned dependencies into a venv ----------
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first so source edits do not re-download them.
COPY pyproject.toml README.md* ./
RUN mkdir -p app && touch app/__init__.py && pip install . && pip uninstall -y property-analytics
COPY app ./app
RUN pip install --no-deps .

# --- runtime -------------------------------------------------------------------------
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 app \
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
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('WORKER_WEB_PORT', '6066'), timeout=2)"
CMD ["faust", "-A", "app.main", "worker", "-l", "info"]

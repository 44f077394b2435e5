# The recorder as a container (port 8666). PyAV bundles FFmpeg with libmp3lame,
# so no system ffmpeg is needed.
# It listens on 0.0.0.0, so it starts only with credentials: a user
# (`docker compose run --rm recorder taperoom recorder user add NAME`, kept in
# /app/data) and/or API_TOKEN, or TRUSTED_NETWORK=true; names it is reached by
# from other machines go in ALLOWED_HOSTS. The health check stays open.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=8666 \
    DATA_DIR=/app/data \
    RECORDINGS_DIR=/app/recordings \
    ARTWORK_DIR=/app/artwork \
    SSH_CONFIG_DIR=/app/config \
    LOG_DIR=/app/logs

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN pip install -e '.[recorder]' \
    && useradd --create-home --uid 1000 recorder \
    && mkdir -p data recordings artwork config logs \
    && chown -R recorder:recorder /app
USER recorder

VOLUME ["/app/data", "/app/recordings", "/app/artwork", "/app/config", "/app/logs"]
EXPOSE 8666
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8666/health', timeout=4); sys.exit(0)"
CMD ["taperoom", "recorder", "serve"]

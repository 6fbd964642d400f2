# A thin wrapper over the same install as `make run`: uv installs the locked dependencies,
# then `avocet serve` runs as a non-root user with its data on a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    AVOCET_HOST=0.0.0.0 \
    AVOCET_PORT=8000 \
    AVOCET_DATA_DIR=/data

WORKDIR /app
RUN pip install --no-cache-dir uv && useradd --system --uid 1000 --home /app avocet
COPY pyproject.toml uv.lock README.md ./
COPY app ./app
COPY static ./static
# /backups: where the server writes backups (backup_dir's default beside /data), 0700.
RUN uv sync --frozen --no-dev && mkdir -p /data /backups && chown avocet /data /backups \
    && chmod 700 /data /backups

USER avocet
VOLUME ["/data", "/backups"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["/app/.venv/bin/python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=2).status != 200)"]
CMD ["/app/.venv/bin/avocet", "serve"]

# A thin wrapper over the same install as `make run`: uv installs the locked dependencies,
# then `avocet serve` runs as a non-root user (uid 1000) with its data on a volume.
FROM python:3.11-slim

# The installer is pinned like everything else: the same uv resolves the same uv.lock.
ARG UV_VERSION=0.13.9

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    AVOCET_HOST=0.0.0.0 \
    AVOCET_PORT=8000 \
    AVOCET_DATA_DIR=/data

WORKDIR /app
RUN pip install --no-cache-dir "uv==${UV_VERSION}" && useradd --system --uid 1000 --home /app avocet

# Dependencies first, in their own layer: it is rebuilt only when uv.lock changes, not on
# every change to the code below.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY README.md ./
COPY app ./app
COPY static ./static
# /backups: where the server writes backups (backup_dir's default beside /data), 0700.
RUN uv sync --frozen --no-dev && mkdir -p /data /backups && chown avocet /data /backups \
    && chmod 700 /data /backups

USER avocet
VOLUME ["/data", "/backups"]
EXPOSE 8000
# Asks the port the configuration names (AVOCET_PORT, or port in a mounted config file).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["/app/.venv/bin/python", "-m", "app.healthcheck"]
CMD ["/app/.venv/bin/avocet", "serve"]

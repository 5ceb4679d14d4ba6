# One image for the five services; the container command picks the service:
#   python -m eucaim_node.<reception|anonymisation|metadata|catalogue_sync|audit>
# Build:  docker build -t eucaim-node:dev .
# Runs with a read-only root file system (Helm chart, docker-compose): bytecode is compiled at build time.

FROM python:3.11-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
# Only runtime dependencies, installed (not editable) into /app/.venv, from the lock file.
RUN uv venv /app/.venv \
 && UV_PROJECT_ENVIRONMENT=/app/.venv uv sync --frozen --no-dev --all-packages --no-editable

FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="eucaim-node" \
      org.opencontainers.image.description="EUCAIM node services: reception, anonymisation, metadata, catalogue-sync, audit; the audit ledger's witness" \
      org.opencontainers.image.licenses="Apache-2.0"
# No build or install tools in the final image: the base image's pip/setuptools/wheel go; the venv has none.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
 && rm -rf /usr/local/lib/python3.11/ensurepip /root/.cache \
 && groupadd --system --gid 10001 eucaim && useradd --system --uid 10001 --gid eucaim --no-create-home eucaim \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/eucaim-witness  # the witness's volume starts owned by its user
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    EUCAIM_HEALTH_HOST=0.0.0.0 EUCAIM_HEALTH_PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s CMD ["python", "-c", "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"EUCAIM_HEALTH_PORT\"]}/health/live', timeout=2)"]
CMD ["python", "-m", "eucaim_node.reception"]

# One image for the node's services and the audit ledger's witness; the container command picks the service:
#   python -m eucaim_node.<reception|anonymisation|metadata|catalogue_sync|audit|witness>
# Build:  docker build -t eucaim-node:dev .        (public base: python:3.11-slim-bookworm)
#         make image                               (podman, on a Debian base built locally: scripts/image.py)
# Any base works that has Debian's layout and a `python` 3.11 with the venv module; both stages use the same one,
# so the venv's interpreter link points at the runtime's own Python.
# Runs with a read-only root file system (Helm chart, docker-compose): bytecode is compiled at build time.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
# A TLS-intercepting proxy in front of the package index: give its CA bundle as the build secret `index-ca`
# (podman/docker build --secret id=index-ca,src=/etc/ssl/certs/ca-certificates.crt). Used in this stage only,
# never stored in a layer; absent, the base's own CAs are used.
# uv into a throwaway venv of the build stage: the base need not have pip (Debian's python3 has only ensurepip).
RUN --mount=type=secret,id=index-ca,target=/run/secrets/index-ca \
    if [ -s /run/secrets/index-ca ]; then export SSL_CERT_FILE=/run/secrets/index-ca PIP_CERT=/run/secrets/index-ca; fi \
 && python -m venv /opt/uv && /opt/uv/bin/python -m pip install --no-cache-dir --quiet uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
# Only runtime dependencies, installed (not editable) into /app/.venv, from the lock file, on the base's Python.
# uv's download cache is a build cache mount: a rebuild after a code change downloads nothing, no layer keeps it.
RUN --mount=type=secret,id=index-ca,target=/run/secrets/index-ca --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/index-ca ]; then export SSL_CERT_FILE=/run/secrets/index-ca; fi \
 && /opt/uv/bin/uv venv --python "$(command -v python3)" /app/.venv \
 && UV_PROJECT_ENVIRONMENT=/app/.venv /opt/uv/bin/uv sync --frozen --no-dev --all-packages --no-editable

FROM ${BASE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="eucaim-node" \
      org.opencontainers.image.description="EUCAIM node services: reception, anonymisation, metadata, catalogue-sync, audit; the audit ledger's witness" \
      org.opencontainers.image.licenses="Apache-2.0"
# No build or install tools in the final image: the base's pip/setuptools/wheel (if it has them) and the wheels
# ensurepip would install go; the venv has none.
RUN if python -m pip --version >/dev/null 2>&1; then python -m pip uninstall --yes --quiet pip setuptools wheel; fi \
 && rm -rf /usr/local/lib/python3.11/ensurepip /usr/lib/python3.11/ensurepip /usr/share/python-wheels /root/.cache \
 && groupadd --system --gid 10001 eucaim && useradd --system --uid 10001 --gid eucaim --no-create-home eucaim \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/eucaim-witness \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/eucaim-datasets
# Both directories exist owned by uid 10001 so that a new Docker named volume mounted there (compose: witness-data,
# datasets) starts with that owner; without them Docker creates the volume's root owned by root.
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    EUCAIM_HEALTH_HOST=0.0.0.0 EUCAIM_HEALTH_PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s CMD ["python", "-c", "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"EUCAIM_HEALTH_PORT\"]}/health/live', timeout=2)"]
CMD ["python", "-m", "eucaim_node.reception"]

# syntax=docker/dockerfile:1
# One image for every Tenantry process: `serve` (the default command), `worker`, `db upgrade`, and the client
# commands. Built from the repository root: docker build -t tenantry .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtual environment holding Tenantry and its dependencies ----------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/tenantry
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/tenantry/bin/pip install --no-compile . \
    && /opt/tenantry/bin/python -m compileall -q /opt/tenantry/lib

# -- runtime: the virtual environment only, run by an unprivileged user ----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="tenantry" \
      org.opencontainers.image.description="Control plane for workspaces across authentik, Stalwart and oCIS" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 tenantry \
    && useradd --system --uid 10001 --gid tenantry --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tenantry
COPY --from=build /opt/tenantry /opt/tenantry
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/tenantry-entrypoint
ENV PATH=/opt/tenantry/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TENANTRY_LOG_JSON=true
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000
# The API's liveness; a worker or migration container turns it off (compose: healthcheck.disable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["tenantry-entrypoint"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

# syntax=docker/dockerfile:1
# One image for every cardflow service, selected by command:
#
#   python -m services.gateway        the HTTP API, read model and web page (the default)
#   python -m services.analysis       stage services: analysis, epics, stories, subtasks
#   python -m services.runtime.migrate services.<name>.app:MIGRATIONS
#                                     migrate a service's database and the fleet's, then exit
#   python -m services.gateway.keys   mint or revoke API keys
#   cardflow ...                      the command line (e.g. `cardflow dlq list`)
#
# Settings come from CARDFLOW_* environment variables (README's configuration table).
# Build from the repository root: docker build -t cardflow:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The locked pins the runtime needs (requirements.lock also pins the test tools), with their
# hashes; pip check fails the build if one is missing.
COPY requirements.lock pyproject.toml deploy/docker/runtime_lock.py ./
RUN python runtime_lock.py requirements.lock pyproject.toml > runtime.lock \
 && python runtime_lock.py --build requirements.lock pyproject.toml > build.lock \
 && python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r build.lock \
 && python -m venv /opt/cardflow \
 && /opt/cardflow/bin/pip install --require-hashes --no-deps -r runtime.lock
COPY README.md ./
COPY contracts ./contracts
COPY services ./services
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
 && /opt/cardflow/bin/pip install --no-deps /dist/cardflow-*.whl \
 && /opt/cardflow/bin/pip check

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 cardflow \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/cardflow --create-home \
      --shell /usr/sbin/nologin cardflow
COPY --from=build /opt/cardflow /opt/cardflow
ENV PATH=/opt/cardflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CARDFLOW_STATE_DIR=/var/lib/cardflow \
    CARDFLOW_GATEWAY_HOST=0.0.0.0 \
    CARDFLOW_LOG_FORMAT=json
WORKDIR /var/lib/cardflow
USER 10001:10001
# 8000: the gateway (API, web page, /healthz, /readyz, /metrics);
# 9100: a stage service's /metrics when CARDFLOW_METRICS_PORT=9100 (the manifests set it).
EXPOSE 8000 9100
CMD ["python", "-m", "services.gateway"]

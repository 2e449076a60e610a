# syntax=docker/dockerfile:1
# k8stars/base: Python 3.11, k8stars (tarscli, tars-codec, tarsregistry) and the TARS work directory.
#
#   docker build -f deploy/docker/base.Dockerfile -t k8stars/base:0.1.0 .
#
# Service images start FROM this one and add their binary, _server_meta.yaml and start.sh to
# $TARS_PATH/bin; the default command, `tarscli supervisor`, does the rest.
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: compiles the optional C accelerator of the codec, installs k8stars into a venv ---
FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN python -m venv /opt/k8stars \
 && /opt/k8stars/bin/pip install . \
 && /opt/k8stars/bin/python -c "import k8stars.tars.codec._speedups" \
 && find /opt/k8stars -name '__pycache__' -prune -exec rm -rf '{}' + \
 && /opt/k8stars/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
      /opt/k8stars/lib

# --- runtime: no compiler, no pip cache; bytecode precompiled (the user cannot write it) ---
FROM ${PYTHON_IMAGE} AS base
COPY --from=builder /opt/k8stars /opt/k8stars
# The readiness probe `tarscli hzcheck` starts a Python process every 10 s in every pod: make
# sure the standard library modules it (and the supervisor) imports are precompiled too.
# PYTHONDONTWRITEBYTECODE is deliberately not set.
RUN python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
      -x '/(idlelib|tkinter|turtledemo|ensurepip|lib2to3|pydoc_data|test|tests)/' \
      "$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" \
 && groupadd --system --gid 10001 tars \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tars --no-create-home \
      --shell /usr/sbin/nologin tars \
 && mkdir -p /tars/bin /tars/conf /tars/data /tars/log \
 && chown -R 10001:10001 /tars \
 && /opt/k8stars/bin/tarscli version
ENV PATH=/opt/k8stars/bin:$PATH \
    TARS_PATH=/tars \
    PYTHONUNBUFFERED=1
WORKDIR /tars
USER 10001:10001
CMD ["tarscli", "supervisor"]

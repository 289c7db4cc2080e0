# syntax=docker/dockerfile:1
# safeguard-fhir: the FHIR API on port 8000, SQLite at /data/safeguard.db unless told otherwise.
#
#   docker build -t safeguard-fhir .
#   docker run -p 8000:8000 -v safeguard-data:/data \
#     -e SAFEGUARD_BASE_URL=https://fhir.example.org/fhir safeguard-fhir
#
# SAFEGUARD_BASE_URL is the public base used in Location headers and Bundle fullUrls; set it.
# The image runs `safeguard serve --host 0.0.0.0`, which migrates the database, then serves.
# `safeguard serve` takes:
#   --host ADDRESS   the address to listen on (127.0.0.1 by default; 0.0.0.0 here)
#   --port N         the port (8000; the HEALTHCHECK below asks 8000)
#   --workers N      server processes (1); more than one needs PostgreSQL
#   --no-apply-migrations, --seed-demo/--no-seed-demo (SAFEGUARD_SEED_DEMO, false here)
# e.g. with PostgreSQL (SAFEGUARD_DATABASE_URL=postgresql://user:password@host:5432/db):
#   docker run ... safeguard-fhir safeguard serve --host 0.0.0.0 --workers 4
# A bind mount on /data must be writable by uid 10001. `.ci/docker-smoke` builds this image
# and checks that it answers.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: the project's wheel (its migrations and data files are package data), then a
# venv of that wheel and its pinned dependencies. Only the venv leaves this stage.
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY app/ app/

RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/safeguard \
    && /opt/safeguard/bin/pip install -c constraints.txt /wheels/safeguard_fhir-*.whl

# Final stage: the installed venv, no source tree, no wheels, no PYTHONPATH.
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="safeguard-fhir" \
      org.opencontainers.image.description="FHIR R4 service for child-safeguarding information"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/safeguard/bin:$PATH \
    SAFEGUARD_DATABASE_URL=sqlite:////data/safeguard.db \
    SAFEGUARD_EXPORT_DIR=/data/exports \
    SAFEGUARD_SEED_DEMO=false

COPY --from=build /opt/safeguard /opt/safeguard

RUN groupadd --system --gid 10001 safeguard \
    && useradd --system --uid 10001 --gid safeguard --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin safeguard \
    && mkdir /data \
    && chown safeguard:safeguard /data

WORKDIR /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# Ready means the database answers (/_status is 503 otherwise); slim has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/_status', timeout=4).status == 200 else 1)"]

# Applies the migrations, then serves on 0.0.0.0:8000 (see app/cli.py).
CMD ["safeguard", "serve", "--host", "0.0.0.0"]

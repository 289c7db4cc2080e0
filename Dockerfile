# syntax=docker/dockerfile:1
# safeguard-fhir: the FHIR API on port 8000, SQLite at /data/safeguard.db unless told otherwise.
#
#   docker build -t safeguard-fhir .
#   docker run -p 8000:8000 -v safeguard-data:/data \
#     -e SAFEGUARD_BASE_URL=https://fhir.example.org/fhir safeguard-fhir
#
# SAFEGUARD_BASE_URL is the public base used in Location headers and Bundle fullUrls; set it.
# For PostgreSQL set SAFEGUARD_DATABASE_URL=postgresql://user:password@host:5432/db, and then
# `safeguard serve --host 0.0.0.0 --workers N` may serve from more than one worker.
# A bind mount on /data must be writable by uid 10001.
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="safeguard-fhir" \
      org.opencontainers.image.description="FHIR R4 service for child-safeguarding information"

# PYTHONPATH: `app` is imported from this source tree, not from the copy pip puts in
# site-packages, because app/storage/migrate.py finds alembic.ini and migrations/ next to the
# source (two directories above itself); from site-packages `safeguard` could not migrate.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONPATH=/srv/safeguard-fhir \
    SAFEGUARD_DATABASE_URL=sqlite:////data/safeguard.db \
    SAFEGUARD_SEED_DEMO=false

WORKDIR /srv/safeguard-fhir

COPY pyproject.toml constraints.txt alembic.ini ./
COPY app/ app/
COPY migrations/ migrations/

# The full pinned set is in constraints.txt; the in-tree build leaves build/ and *.egg-info.
RUN pip install --no-cache-dir -c constraints.txt . \
    && rm -rf build ./*.egg-info

RUN groupadd --system --gid 10001 safeguard \
    && useradd --system --uid 10001 --gid safeguard --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin safeguard \
    && mkdir /data \
    && chown safeguard:safeguard /data

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# Ready means the database answers (/_status is 503 otherwise); slim has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/_status', timeout=4).status == 200 else 1)"]

# Applies the migrations, then serves on 0.0.0.0:8000 (see app/cli.py).
CMD ["safeguard", "serve", "--host", "0.0.0.0"]

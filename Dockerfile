# syntax=docker/dockerfile:1
# One image for every hyperwatch process; the role is the first argument:
#   docker run IMAGE migrate|ingester|worker|beat|flower|simulator|health
# See deploy/docker/entrypoint.sh and docs/OPERATIONS.md.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from pyproject.toml and constraints.txt alone, so a code change does not
# reinstall them; at the exact versions in constraints.txt, the ones `make install` and CI
# use (runtime/transport.py refuses to start on a kombu it was not written against).
COPY pyproject.toml README.md constraints.txt ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
    > /tmp/requirements.txt
RUN pip install -c constraints.txt -r /tmp/requirements.txt
COPY settings.py events.py celeryconfig.py beat_schedule.py ./
COPY models ./models
COPY runtime ./runtime
COPY domain ./domain
COPY tasks ./tasks
COPY workers ./workers
RUN pip install --no-deps .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DATA_DIR=/var/lib/hyperwatch
# tini as PID 1: forwards SIGTERM to the process and reaps zombies (Celery's pool children).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 hyperwatch \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin hyperwatch \
    && mkdir -p /app /var/lib/hyperwatch/recordings \
    && chown -R hyperwatch:hyperwatch /var/lib/hyperwatch
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Flower reads flowerconfig.py from its working directory (auth guard, history bound).
COPY flowerconfig.py ./
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/hyperwatch-entrypoint
USER 10001:10001
# ingester /healthz /readyz /metrics · Flower · worker /metrics · simulator
EXPOSE 8001 5555 9808 8765
ENTRYPOINT ["tini", "--", "hyperwatch-entrypoint"]
CMD ["worker"]

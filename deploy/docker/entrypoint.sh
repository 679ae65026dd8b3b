#!/bin/sh
# The image's one entry point: `hyperwatch-entrypoint ROLE [ARGS...]`.
#
# Every role ends in `exec`, so the hyperwatch/Celery process replaces this shell and is the
# one that receives SIGTERM from Docker, Kubernetes or systemd (a signal sent to a shell
# that runs the process as a child never reaches it, and the warm shutdown never happens).
# tini is PID 1 in the image: it forwards signals to this process and reaps zombies.
set -eu

# Billiard reads REMAP_SIGTERM from the environment when Celery is imported, never from
# the Celery config: with it, SIGTERM starts the worker's soft shutdown (running tasks get
# WORKER_SOFT_SHUTDOWN_TIMEOUT_S, then whatever still runs is cancelled and requeued).
export REMAP_SIGTERM="${REMAP_SIGTERM:-SIGQUIT}"

role="${1:-}"
if [ -n "$role" ]; then
  shift
fi

case "$role" in
  migrate)
    exec hyperwatch db upgrade "$@"
    ;;
  ingester)
    exec hyperwatch ingest "$@"
    ;;
  worker)
    # WORKER_QUEUES lets one image run dedicated pools (e.g. notify only); the default
    # consumes every queue. Node name celery@<hostname> is what `hyperwatch health worker`
    # checks by default.
    exec celery -A tasks worker \
      -Q "${WORKER_QUEUES:-ingest,alerts,notify,maintenance}" \
      -c "${WORKER_CONCURRENCY:-2}" \
      -n "celery@%h" \
      --loglevel "${LOG_LEVEL:-INFO}" \
      "$@"
    ;;
  beat)
    exec celery -A tasks beat --loglevel "${LOG_LEVEL:-INFO}" \
      --schedule "${DATA_DIR:-/var/lib/hyperwatch}/celerybeat-schedule" "$@"
    ;;
  flower)
    # Options come from FLOWER_* variables and flowerconfig.py (in the working directory),
    # which refuses a non-loopback address without FLOWER_BASIC_AUTH.
    exec celery -A tasks flower "$@"
    ;;
  api)
    # The subscriber API on all interfaces of the container; API_PORT, API_WORKERS and
    # API_ADMIN_KEY come from the environment. uvicorn drains on SIGTERM.
    exec hyperwatch api --host "${API_HOST:-0.0.0.0}" "$@"
    ;;
  simulator)
    exec hyperwatch simulate --host 0.0.0.0 --port "${SIM_PORT:-8765}" \
      --users "${SIM_USERS:-2}" "$@"
    ;;
  health)
    exec hyperwatch health "$@"
    ;;
  "")
    echo "usage: hyperwatch-entrypoint migrate|ingester|worker|beat|flower|api|simulator|health [ARGS...]" >&2
    exit 2
    ;;
  *)
    # Anything else runs as given (e.g. `hyperwatch config show`), still exec'd.
    exec "$role" "$@"
    ;;
esac

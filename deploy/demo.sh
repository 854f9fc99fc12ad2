#!/usr/bin/env bash
# `make demo`: a local Prefect server, the mail sink, the scheduled flows and the web app,
# all on 127.0.0.1 and all stopped when this script exits (Ctrl+C).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PREFECT_PORT=${PREFECT_PORT:-4200}
SINK_PORT=${SINK_PORT:-8025}
DEMO_PORT=${DEMO_PORT:-8000}
# Links in the mails (written by the flows below and by the web app) point to the demo's port.
export AIGUILLAGE_BASE_URL=${AIGUILLAGE_BASE_URL:-http://127.0.0.1:$DEMO_PORT}

mkdir -p var/mail var/prefect
rm -f var/mail/*  # the database is seeded anew: so is the mailbox
export PREFECT_HOME="$PWD/var/prefect"
export PREFECT_API_DATABASE_CONNECTION_URL="sqlite+aiosqlite:///$PWD/var/prefect/server.db"
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
export PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS=${PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS:-10}
export AIGUILLAGE_SMTP_PORT=$SINK_PORT
# The demo's rhythm: mails every minute, new freins every 2 minutes, allocation weekly.
export AIGUILLAGE_SCHEDULE_NOTIFICATIONS=${AIGUILLAGE_SCHEDULE_NOTIFICATIONS:-1m}
export AIGUILLAGE_SCHEDULE_INTAKE=${AIGUILLAGE_SCHEDULE_INTAKE:-2m}

pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$VENV/bin/python" -m notifications.sink --dir var/mail --port "$SINK_PORT" > var/prefect/sink.log 2>&1 &
pids+=($!)
echo "Serveur Prefect : démarrage sur http://127.0.0.1:$PREFECT_PORT …"
"$VENV/bin/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT" > var/prefect/server.log 2>&1 &
pids+=($!)
"$VENV/bin/python" - "$PREFECT_PORT" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/api/health"
for _ in range(180):
    try:
        with urllib.request.urlopen(url, timeout=2):
            sys.exit(0)
    except OSError:
        time.sleep(1)
sys.exit("le serveur Prefect n'a pas démarré (voir var/prefect/server.log)")
PY
export PREFECT_API_URL="http://127.0.0.1:$PREFECT_PORT/api"

# The first flows run through that server (no temporary one per command).
# A year of work is replayed first, so the Impact page shows one: the network as of
# 1 January (the year's entrants held back), then the year up to today (the previous
# year in full before April, when the current one is still short).
YEAR=$(date +%Y)
if [ "$(date +%-m)" -lt 4 ]; then YEAR=$((YEAR - 1)); fi
"$VENV/bin/aiguillage" db upgrade
"$VENV/bin/aiguillage" seed --reset --scale 1 --seed 42 --entrants --today "$YEAR-01-01"
"$VENV/bin/aiguillage" simulate --year "$YEAR"
"$VENV/bin/aiguillage" snapshots --year "$YEAR"
"$VENV/bin/aiguillage" route
"$VENV/bin/aiguillage" demo-activity
"$VENV/bin/aiguillage" allocate
"$VENV/bin/aiguillage" summary
# No explicit notify: the scheduled notifications flow sends the mails within a minute.
echo "Courriels en attente : le passage planifié des notifications les dépose dans var/mail/ (toutes les $AIGUILLAGE_SCHEDULE_NOTIFICATIONS)."

"$VENV/bin/aiguillage" flows serve > var/prefect/flows-serve.log 2>&1 &
pids+=($!)
echo "Interface Prefect (déploiements et passages planifiés) : http://127.0.0.1:$PREFECT_PORT"
echo "Flux planifiés : orientation toutes les $AIGUILLAGE_SCHEDULE_INTAKE, courriels toutes les $AIGUILLAGE_SCHEDULE_NOTIFICATIONS (journal : var/prefect/flows-serve.log)"
"$VENV/bin/aiguillage" serve --port "$DEMO_PORT" --print-logins --demo

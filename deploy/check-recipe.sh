#!/usr/bin/env bash
# Follows the README's production recipe on this machine — Prefect's own PostgreSQL database
# with pg_trgm, the API without services, the services apart, the deployments on a process
# work pool, one worker — with throw-away databases and a free loopback port, and checks that
# the scheduled intake routes the seeded freins through the worker with nobody calling a
# command. Everything it started or created is removed at exit. Usage: bash deploy/check-recipe.sh
set -euo pipefail
set -m  # each background command in its own process group, stopped whole at exit
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PG="-h 127.0.0.1 -U postgres"
suffix="recipe_$$"
tmp=$(mktemp -d)
pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
    sleep 3
    for pid in "${pids[@]}"; do kill -9 -- "-$pid" 2>/dev/null || true; done
    dropdb $PG --if-exists --force "aiguillage_$suffix" 2>/dev/null || true
    dropdb $PG --if-exists --force "prefect_$suffix" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# 1. Databases, Prefect's with pg_trgm.
createdb $PG "aiguillage_$suffix"
createdb $PG "prefect_$suffix"
psql $PG -q -d "prefect_$suffix" -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm'
# 2. The environment file of deploy/systemd, with this machine's values.
sed -e "s#^AIGUILLAGE_DATABASE_URL=.*#AIGUILLAGE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/aiguillage_$suffix#" \
    -e "s#^PREFECT_API_DATABASE_CONNECTION_URL=.*#PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/prefect_$suffix#" \
    -e "s#^PREFECT_API_URL=.*#PREFECT_API_URL=http://127.0.0.1:$port/api#" \
    -e "s#^PREFECT_HOME=.*#PREFECT_HOME=$tmp/prefect#" \
    -e "s#^AIGUILLAGE_SCHEDULE_INTAKE=.*#AIGUILLAGE_SCHEDULE_INTAKE=10s#" \
    -e "s#^AIGUILLAGE_SCHEDULE_NOTIFICATIONS=.*#AIGUILLAGE_SCHEDULE_NOTIFICATIONS=off#" \
    -e "s#^AIGUILLAGE_SCHEDULE_ALLOCATION=.*#AIGUILLAGE_SCHEDULE_ALLOCATION=off#" \
    -e "s#^AIGUILLAGE_SCHEDULE_REPORTING=.*#AIGUILLAGE_SCHEDULE_REPORTING=off#" \
    -e "s#^AIGUILLAGE_SECRET_KEY=.*#AIGUILLAGE_SECRET_KEY=$(head -c 36 /dev/urandom | base64)#" \
    deploy/systemd/aiguillage.env.example > "$tmp/aiguillage.env"
chmod 600 "$tmp/aiguillage.env"
set -a; . "$tmp/aiguillage.env"; set +a
export PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS=5
# 3. Schema, a small network, then the units' commands.
"$VENV/bin/aiguillage" db upgrade
"$VENV/bin/aiguillage" seed --scale 0.02 > /dev/null
"$VENV/bin/prefect" server start --host 127.0.0.1 --port "$port" --no-services > "$tmp/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
    curl -fs "http://127.0.0.1:$port/api/health" > /dev/null && break
    sleep 1
done
curl -fs "http://127.0.0.1:$port/api/health" > /dev/null || { cat "$tmp/api.log"; exit 1; }
"$VENV/bin/prefect" server services start > "$tmp/services.log" 2>&1 &
pids+=($!)
# 4. The deployments on a process work pool, and one worker.
"$VENV/bin/aiguillage" flows deploy --pool "aiguillage-$suffix"
"$VENV/bin/prefect" worker start --pool "aiguillage-$suffix" --name worker-1 > "$tmp/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do
    routed=$(psql $PG -tA -d "aiguillage_$suffix" -c 'SELECT count(*) FROM referral')
    [ "$routed" -gt 0 ] && break
    sleep 5
done
freins=$(psql $PG -tA -d "aiguillage_$suffix" -c 'SELECT count(*) FROM frein')
"$VENV/bin/aiguillage" flows status
if [ "$routed" -eq "$freins" ] && [ "$routed" -gt 0 ]; then
    echo "Recette de production : $routed freins orientés par le flux planifié, via le worker."
else
    echo "Recette de production : échec ($routed orientations pour $freins freins)." >&2
    tail -20 "$tmp/worker.log" "$tmp/services.log" >&2
    exit 1
fi

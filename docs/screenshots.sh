#!/usr/bin/env bash
# The README's screenshots, made again from a real run: a head and a worker started with two
# `ray start` on this machine (token authentication on, a token of this script's own), the
# README's `ray job submit --working-dir . -- python -m seqsweep sweep run examples/quick.yaml`
# with the experiment on a file:// URI, then headless Chromium on the Ray dashboard's Jobs
# page and on `optuna-dashboard <experiment>/optuna.log`.
#
#   . .venv/bin/activate && pip install -e ".[dashboard]" && apt-get install chromium
#   bash docs/screenshots.sh [OUT_DIR]          # default docs/img; about 3 minutes on 2 cores
#
# Everything it starts runs in process groups of its own, which it ends on exit (it never
# runs `ray stop`: other Ray instances on this machine are left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/img}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/ssshotXXXX)      # short: Ray's Unix socket paths must stay short
GROUPS_STARTED=()

cleanup() {
    for g in "${GROUPS_STARTED[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
    sleep 5
    for g in "${GROUPS_STARTED[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# start "$@" as the leader of a new process group and remember the group
start_group() {
    local log=$1; shift
    setsid "$@" > "$log" 2>&1 &
    GROUPS_STARTED+=("$!")
    disown "$!"          # no "Killed" notice from this shell when cleanup() ends the group
}

alive_nodes() {
    ray list nodes --address "http://127.0.0.1:$DASH" --filter state=ALIVE --format json 2>/dev/null \
        | python -c 'import json, sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo 0
}

wait_for_nodes() {
    for _ in $(seq 120); do
        [ "$(alive_nodes)" -ge "$1" ] && return 0
        sleep 1
    done
    echo "Ray did not come up with $1 node(s); logs in $WORK" >&2
    tail -30 "$WORK"/*.log >&2
    return 1
}

echo "feature store: $WORK/store"
python -m seqsweep features synth "$WORK/data" > /dev/null
python -m seqsweep features extract "$WORK/data" --store "$WORK/store" --dataset synth --no-ray > /dev/null

python -c 'import secrets; print(secrets.token_hex(32))' > "$WORK/auth_token"
chmod 600 "$WORK/auth_token"
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$WORK/auth_token" RAY_USAGE_STATS_ENABLED=0
unset RAY_ADDRESS

read -r GCS DASH CLIENT H1 H2 H3 H4 W1 W2 W3 W4 OPTUNA <<< "$(python -c '
import socket
socks = [socket.socket() for _ in range(12)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"

echo "Ray head and worker (one CPU each), dashboard http://127.0.0.1:$DASH"
start_group "$WORK/head.log" ray start --head --block --num-cpus 1 --temp-dir "$WORK/ray" \
    --port "$GCS" --dashboard-host 127.0.0.1 --dashboard-port "$DASH" --ray-client-server-port "$CLIENT" \
    --dashboard-agent-listen-port "$H1" --dashboard-agent-grpc-port "$H2" --runtime-env-agent-port "$H3" \
    --metrics-export-port "$H4" --disable-usage-stats
wait_for_nodes 1
start_group "$WORK/worker.log" ray start --address "127.0.0.1:$GCS" --block --num-cpus 1 --temp-dir "$WORK/ray" \
    --dashboard-agent-listen-port "$W1" --dashboard-agent-grpc-port "$W2" --runtime-env-agent-port "$W3" \
    --metrics-export-port "$W4" --disable-usage-stats
wait_for_nodes 2

# the README's command ("Run a sweep")
ray job submit --address "http://127.0.0.1:$DASH" --working-dir . --submission-id sweep-quick \
    --metadata-json '{"job_name": "quick"}' -- \
    python -m seqsweep sweep run examples/quick.yaml \
    --store "$WORK/store" --storage "file://$WORK/runs" | tail -25
ray job status --address "http://127.0.0.1:$DASH" sweep-quick | grep -q "succeeded"

start_group "$WORK/optuna-dashboard.log" optuna-dashboard "$WORK/runs/quick/optuna.log" --port "$OPTUNA"
sleep 3

# the dashboard sets this cookie when you give it the token; headless Chromium gets it directly
python docs/screenshot.py --cookie "ray-authentication-token=$(cat "$WORK/auth_token")" --height 700 \
    "http://127.0.0.1:$DASH/#/jobs" "$OUT/ray_dashboard_jobs.png"
python docs/screenshot.py --height 1250 \
    "http://127.0.0.1:$OPTUNA/dashboard/studies/0" "$OUT/optuna_dashboard_study.png"
python docs/screenshot.py --height 760 \
    --click "Param lstm/lr" --click "Param lstm/epochs" --click "Param lstm/units_0" --click "User Attribute cv_std" \
    "http://127.0.0.1:$OPTUNA/dashboard/studies/0/smartSelection" "$OUT/optuna_dashboard_parallel.png"

#!/usr/bin/env bash
# gengate's OpenAI relay against LiteLLM and the upstream directly, with ../shared/bench/compare.sh
# (same fake nginx upstream, same pinned cores, interleaved rounds).
#   bench/openai_relay.sh            from the repository root; env passed on to compare.sh
#                                     (RUNS, CONCS, DUR, LITELLM, STREAM_N, ...)
# gengate: one process pinned to CPU 0 (`taskset -c 0`, as LiteLLM), SQLite in a fresh data dir, two
# `openai` channels on the fake upstream (bench-model, bench-model-stream), an unlimited key (its
# usage records and ledger entries are written, batched). Env: PY (python with gengate installed),
# SHARED (the shared bench folder), PORT (gengate's port, default 8000), GENGATE_DATABASE_URL to
# bench on PostgreSQL instead, KEY_CREDITS=N to bench a limited key holding N credits instead (its
# reservations are taken from the process's credit lease, its charges written in the same batches).
# Smoke run (a few seconds, figures not comparable):
#   PY=/work/main/.venv/bin/python RUNS=1 CONCS=1 DUR=2 WARM=1 LITELLM="" STREAM_N=50 STREAM_WARM=10 \
#     bench/openai_relay.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
[ -d "$SHARED" ] || SHARED=/work/shared/bench
PY=${PY:-$(command -v python)}
PORT=${PORT:-8000}
UPSTREAM_PORT=${UPSTREAM_PORT:-18080}
D=$(mktemp -d /tmp/bench-gengate-XXXXXX)
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
cd /tmp

gg() { "$PY" -m gengate --data-dir "$D" "$@"; }
for p in "$PORT" "$UPSTREAM_PORT"; do  # a server already there would answer in gengate's place
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p is in use: set PORT / UPSTREAM_PORT" >&2; exit 1; fi
done
taskset -c 0 "$PY" -m gengate serve --host 127.0.0.1 --port "$PORT" --data-dir "$D" >"$D.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null; wait $GW 2>/dev/null; rm -rf "$D"' EXIT
until curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthz"; do
  kill -0 $GW 2>/dev/null || { cat "$D.log"; exit 1; }
  sleep 0.2
done
gg channels add --provider openai --base-url "http://127.0.0.1:$UPSTREAM_PORT/v1" --key sk-upstream \
  --models bench-model --name bench >/dev/null
gg channels add --provider openai --base-url "http://127.0.0.1:$UPSTREAM_PORT/stream/v1" --key sk-upstream \
  --models bench-model-stream --name bench-stream >/dev/null
KEY=$(gg keys create --name bench ${KEY_CREDITS:+--credits "$KEY_CREDITS"} 2>/dev/null | tail -n 1)
sleep 2  # the running server picks the channels up within 2 s

RUNS=${RUNS:-3} CONCS=${CONCS:-"64 1"} LITELLM=${LITELLM-"litellm-w1:1:openai/bench-model"} \
  UPSTREAM_PORT=$UPSTREAM_PORT GATEWAY_KEY=$KEY "$SHARED/compare.sh" "gengate=http://127.0.0.1:$PORT@$GW"
sleep 1  # the last batch of usage records
echo "usage records written: $(gg usage --json 2>/dev/null | "$PY" -c 'import json, sys
rows = json.loads(sys.stdin.read().strip().splitlines()[-1])
print(sum(int(r.get("requests", 0)) for r in rows) if isinstance(rows, list) else rows)' || echo "?")"
echo "key balance: $(gg keys list --json 2>/dev/null | "$PY" -c 'import json, sys
keys = json.loads(sys.stdin.read().strip().splitlines()[-1])
print(next((k.get("credits") for k in keys if k.get("name") == "bench"), "?"))' || echo "?")"

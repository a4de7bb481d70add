#!/usr/bin/env bash
# CPU time per relayed request: gengate's OpenAI relay vs LiteLLM, on the same fake upstream.
# On a shared machine requests/s swing with the other load; the CPU seconds a gateway burns per
# request do not (much), and 1e6 / cpu_us is what one dedicated core would serve.
#   bench/openai_cpu.sh        env: PY, SHARED, DUR (default 15), CONC (default 64), ROUNDS (default 2),
#                              UPSTREAM_PORT (18080), GG_PORT (8000), LITELLM_PORT (4001)
# Prints per round and target: `CPU name rps= cpu_us_per_request= one_core_rps=`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
[ -d "$SHARED" ] || SHARED=/work/shared/bench
PY=${PY:-$(command -v python)}
DUR=${DUR:-15} CONC=${CONC:-64} ROUNDS=${ROUNDS:-2}
UPSTREAM_PORT=${UPSTREAM_PORT:-18080} GG_PORT=${GG_PORT:-8000} LITELLM_PORT=${LITELLM_PORT:-4001}
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
D=$(mktemp -d /tmp/bench-gengate-XXXXXX)
cd /tmp

# CPU ticks (utime + stime) of PID and every descendant
ticks() {
  local pids
  pids=$(ps -eo pid=,ppid= | awk -v root="$1" '{p[$1]=$2} END {for (x in p) {y=x; while (y!="" && y!=0 && y!=root) y=p[y]; if (y==root) print x}}')
  for p in $pids; do awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || true; done | awk '{s+=$1} END {print s+0}'
}

UP=$("$SHARED/upstream/start.sh" "$UPSTREAM_PORT" 1)
read -r LL _ _ < <(LITELLM_MODEL=openai/bench-model "$SHARED/peer_litellm.sh" start "$UPSTREAM_PORT" "$LITELLM_PORT" 1 0)
taskset -c 0 "$PY" -m gengate serve --host 127.0.0.1 --port "$GG_PORT" --data-dir "$D" >"$D.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null; "$SHARED/peer_litellm.sh" stop "$LL"; "$SHARED/upstream/stop.sh" "$UP"; rm -rf "$D"' EXIT
until curl -fs -o /dev/null "http://127.0.0.1:$GG_PORT/healthz"; do sleep 0.2; done
"$PY" -m gengate --data-dir "$D" channels add --provider openai --base-url "http://127.0.0.1:$UPSTREAM_PORT/v1" \
  --key sk-upstream --models bench-model --name bench >/dev/null
KEY=$("$PY" -m gengate --data-dir "$D" keys create --name bench 2>/dev/null | tail -n 1)
sleep 2

measure() {  # name pid url key
  local before after out n
  bash "$SHARED/load.sh" "$3" -c "$CONC" -d 3 -H "Authorization: Bearer $4" >/dev/null 2>&1  # warm-up
  before=$(ticks "$2")
  out=$(bash "$SHARED/load.sh" "$3" -c "$CONC" -d "$DUR" -H "Authorization: Bearer $4" 2>&1 | grep RESULT)
  after=$(ticks "$2")
  n=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$out")
  python3 -c "import sys; us=($after-$before)/$(getconf CLK_TCK)/max($n,1)*1e6; print('CPU $1', '$(sed 's/.*\(rps=[0-9.]*\).*/\1/' <<<"$out")', 'cpu_us_per_request=%.0f' % us, 'one_core_rps=%.0f' % (1e6/us if us else 0))"
}
for r in $(seq "$ROUNDS"); do
  measure litellm "$LL" "http://127.0.0.1:$LITELLM_PORT/v1/chat/completions" sk-bench
  measure gengate "$GW" "http://127.0.0.1:$GG_PORT/v1/chat/completions" "$KEY"
done

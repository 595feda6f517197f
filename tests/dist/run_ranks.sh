#!/usr/bin/env bash
# Starts a command N times as the ranks of one job on loopback, the way torchrun sets them up
# (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, a free MASTER_PORT);
# prefixes each rank's output with its rank and fails unless every rank exits 0 in time.
# Usage: run_ranks.sh N COMMAND [ARGS...]
set -euo pipefail
n=$1
shift
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pids=()
for ((r = 0; r < n; r++)); do
  RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    timeout 900 "$@" > >(sed -u "s/^/[rank $r] /") 2>&1 &
  pids+=($!)
done
status=0
for ((r = 0; r < n; r++)); do
  if ! wait "${pids[$r]}"; then
    echo "rank $r failed" >&2
    status=1
  fi
done
exit $status

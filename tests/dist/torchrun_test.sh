#!/usr/bin/env bash
# Distributed training from the command line, as a user runs it: the same config on one
# process and on two under torchrun gives the same per-task losses for 10 steps of all 14
# tasks (fp32, dropout 0); checkpoints resume 2 -> 1 and 1 -> 2; a rank killed with -9 or
# frozen, and a rank started with another config, end the other rank with an error naming
# the rank, never a hang. Loopback only. Usage: torchrun_test.sh PATH/TO/commercemm RUN_DIR
set -euo pipefail
app=$(realpath "$1")
run=$2
here=$(dirname "$0")
source tests/app/script_support.sh
fresh_dir "$run"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
torchrun=$(command -v torchrun || true)
[ -n "$torchrun" ] || fail "torchrun not found: scripts/install-deps installs python3-torch"
tiny+=(--set train.steps=10 --set train.log_every=1
      --set train.checkpoint_every=5 --set train.keep_checkpoints=5)
# torch 1.13's torchrun: underscore flags; --redirects/--tee work around its Python 3.11 bug.
launch2() { "$torchrun" --no_python --nproc_per_node 2 --redirects 1 --tee 1 --master_port "$(free_port)" "$app" "$@"; }
compare() { python3 "$here/compare_losses.py" "$@"; }

echo "== 10 steps of the 14 tasks: one process, then two under torchrun"
"$app" pretrain "${tiny[@]}" --out "$run/one" > "$run/one.log"
launch2 pretrain "${tiny[@]}" --out "$run/two" > "$run/two.log" 2>&1 || { cat "$run/two.log"; fail "torchrun run failed"; }
grep -q "2 ranks (gloo)" "$run/two.log" || fail "the two-rank run did not say it ran on 2 ranks"
compare "$run/one/metrics.jsonl" "$run/two/metrics.jsonl"

# A copy of a run whose newest checkpoint is step 5, as if it had stopped there.
at_step5() {
  cp -r "$1" "$2"
  rm "$2/checkpoints/last.pt" "$2/checkpoints/step-0000010.pt"
  ln "$2/checkpoints/step-0000005.pt" "$2/checkpoints/last.pt"
}
echo "== resume 2 -> 1: steps 6-10 on one process follow the uninterrupted run"
at_step5 "$run/two" "$run/two_to_one"
"$app" pretrain --resume --out "$run/two_to_one" > "$run/two_to_one.log"
compare "$run/one/metrics.jsonl" "$run/two_to_one/metrics.jsonl" --from-step 6
echo "== resume 1 -> 2"
at_step5 "$run/one" "$run/one_to_two"
launch2 pretrain --resume --out "$run/one_to_two" > "$run/one_to_two.log" 2>&1 || { cat "$run/one_to_two.log"; fail "resume 1 -> 2 failed"; }
compare "$run/one/metrics.jsonl" "$run/one_to_two/metrics.jsonl" --from-step 6

# Two ranks started by hand (torchrun would itself end the survivors): rank 0 and rank 1
# with their own arguments; prints the pids.
start_ranks() {
  local port
  port=$(free_port)
  RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$app" pretrain $1 > "$2.0.log" 2>&1 &
  pid0=$!
  RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$app" pretrain $3 > "$2.1.log" 2>&1 &
  pid1=$!
}
long="--config examples/configs/tiny.toml --set train.batch_size=16 --set train.steps=100000 --set dist.timeout_s=20"

for how in KILL STOP; do
  echo "== SIGKILL/SIGSTOP of rank 1 mid-run: rank 0 exits non-zero within dist.timeout_s, naming rank 1 ($how)"
  start_ranks "$long --out $run/fault_$how" "$run/fault_$how" "$long --out $run/fault_${how}_1"
  for _ in $(seq 1 600); do [ -s "$run/fault_$how/metrics.jsonl" ] && break; sleep 0.2; done
  [ -s "$run/fault_$how/metrics.jsonl" ] || fail "the two-rank run never logged a step"
  kill -"$how" "$pid1"
  started=$(date +%s)
  set +e
  timeout 60 tail --pid "$pid0" -f /dev/null
  wait "$pid0"
  status=$?
  set -e
  took=$(( $(date +%s) - started ))
  kill -KILL "$pid1" 2> /dev/null || true
  wait "$pid1" 2> /dev/null || true
  cat "$run/fault_$how.0.log" | tail -3
  [ "$status" -ne 0 ] || fail "rank 0 exited 0 after losing rank 1"
  [ "$took" -le 22 ] || fail "rank 0 took ${took}s to give up, more than dist.timeout_s"
  grep -q "\[rank 0\] error: dist: lost rank 1" "$run/fault_$how.0.log" || fail "rank 0's error does not name rank 1"
done

echo "== SIGTERM to torchrun: every rank stops after the same step and rank 0 checkpoints it"
"$torchrun" --no_python --nproc_per_node 2 --redirects 1 --tee 1 --master_port "$(free_port)" "$app" pretrain \
  $long --set train.log_every=1 --set train.checkpoint_every=100000 --out "$run/term" > "$run/term.log" 2>&1 &
tpid=$!
for _ in $(seq 1 600); do [ -s "$run/term/metrics.jsonl" ] && break; sleep 0.2; done
kill -TERM "$tpid"
set +e
timeout 60 tail --pid "$tpid" -f /dev/null
wait "$tpid"
set -e
grep -q "stopped at step" "$run/term.log" || { tail -20 "$run/term.log"; fail "rank 0 did not report a clean stop"; }
[ -f "$run/term/checkpoints/last.pt" ] || fail "no checkpoint after SIGTERM"
stopped=$(sed -n 's/.*stopped at step \([0-9]*\).*/\1/p' "$run/term.log" | head -1)
last=$(tail -1 "$run/term/metrics.jsonl" | python3 -c 'import json, sys; print(json.load(sys.stdin)["step"])')
[ "$stopped" = "$last" ] || fail "stopped at step $stopped but metrics.jsonl ends at step $last"
"$app" pretrain --resume --out "$run/term" --set train.steps=$((stopped + 2)) > "$run/term_resume.log"
grep -q "resuming at step $stopped" "$run/term_resume.log" || fail "the checkpoint is not at step $stopped"

echo "== a rank started with another config: both exit with a clear error"
start_ranks "$long --set train.lr=1e-3 --out $run/mismatch" "$run/mismatch" "$long --set train.lr=2e-3 --out $run/mismatch_1"
set +e
timeout 60 tail --pid "$pid0" -f /dev/null
wait "$pid0"; s0=$?
wait "$pid1"; s1=$?
set -e
cat "$run/mismatch.1.log" | tail -2
[ "$s0" -eq 2 ] && [ "$s1" -eq 2 ] || fail "config mismatch exit statuses $s0 and $s1, expected 2 and 2"
grep -q "rank 1 started with another recipe or config than rank 0" "$run/mismatch.0.log" || fail "no clear mismatch error"
echo "distributed CLI: all checks passed"

#!/usr/bin/env bash
# A checkpoint that cannot be written (a full disk, here a file-size limit: `ulimit -f`) is a
# clear error naming the file, and the previous checkpoint stays whole and resumable.
# Usage: full_disk_test.sh PATH/TO/commercemm RUN_DIR   (from the repository root)
set -euo pipefail
app=$1
run=$2
source tests/app/script_support.sh
fresh_dir "$run"
tiny+=(--set train.log_every=1 --set train.checkpoint_every=2)

echo "== four steps, checkpoints at 2 and 4"
"$app" pretrain "${tiny[@]}" --set train.steps=4 --out "$run/out" > "$run/first.log"
size=$(stat -c %s "$run/out/checkpoints/step-0000004.pt")
cp "$run/out/checkpoints/step-0000004.pt" "$run/step-4.copy"

echo "== resumed with files limited to half a checkpoint ($size bytes): the save at step 6 fails"
set +e
(
  trap '' XFSZ                      # write() then fails with EFBIG instead of killing the process
  ulimit -f $(( size / 1024 / 2 ))  # in 1024-byte blocks
  exec "$app" pretrain --resume --out "$run/out" --set train.steps=8
) > "$run/limited.log" 2> "$run/limited.err"
status=$?
set -e
cat "$run/limited.err"
[ "$status" -eq 2 ] || fail "exit status $status, expected 2"
grep -q "step-0000006.pt: cannot write the checkpoint (disk full or not writable?)" "$run/limited.err" ||
  fail "the error does not name the checkpoint and the cause"
grep -q "the previous checkpoint is intact" "$run/limited.err" || fail "the error does not say the previous one is intact"
[ ! -e "$run/out/checkpoints/step-0000006.pt" ] || fail "a partial step-6 checkpoint was left under its name"
! ls -A "$run/out/checkpoints" | grep -q '\.tmp$' || fail "a temporary file was left behind"
cmp -s "$run/out/checkpoints/step-0000004.pt" "$run/step-4.copy" || fail "step 4's checkpoint changed"
cmp -s "$run/out/checkpoints/last.pt" "$run/step-4.copy" || fail "last.pt is not step 4's checkpoint"

echo "== with room again, the run resumes from step 4 and finishes"
"$app" pretrain --resume --out "$run/out" --set train.steps=8 | tee "$run/again.log"
grep -q "resuming at step 4" "$run/again.log" || fail "did not resume from step 4"
[ -f "$run/out/checkpoints/step-0000008.pt" ] || fail "no final checkpoint"
echo "ok"

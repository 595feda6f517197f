#!/usr/bin/env bash
# The peer does the same work as the C++ step: for each tiny case of scripts/bench --peer, the
# matrix-product and convolution FLOPs of one step counted in benchmarks/python/steps.py
# (torch.profiler) must equal commercemm_bench_steps' GFLOP/step (its own counter) to 0.1%.
# A change to the library's step or to the peer that makes them do different work fails here.
# Usage: benchmarks/python/check_peer_flops.sh PATH/TO/commercemm_bench_steps
set -euo pipefail
cd "$(dirname "$0")/../.."
bench=${1:?usage: check_peer_flops.sh PATH/TO/commercemm_bench_steps}
status=0
for case in itc pass_a5 all14; do
  cpp=$("$bench" --benchmark_filter="^$case/tiny/" --benchmark_format=csv 2>/dev/null |
    python3 -c 'import csv, sys; rows = [r for r in csv.DictReader(l for l in sys.stdin if l.startswith(("name", "\"")))]; print(rows[0]["GFLOP/step"])')
  py=$(/usr/bin/python3 benchmarks/python/steps.py "$case" tiny 32 --flops | awk '/gflop_per_step/ { print $2 }')
  if python3 -c "import sys; c, p = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(c - p) > 1e-3 * c)" "$cpp" "$py"; then
    echo "$case/tiny: C++ $cpp GFLOP/step, PyTorch $py: equal"
  else
    echo "$case/tiny: C++ $cpp GFLOP/step, PyTorch $py: the peer does other work than the step" >&2
    status=1
  fi
done
exit $status

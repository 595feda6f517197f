"""Compares the per-task losses of two runs' metrics.jsonl, step by step.

Usage: compare_losses.py A/metrics.jsonl B/metrics.jsonl [--from-step N] [--rtol 1e-4]
Exits 1 naming the step and task when any loss differs by more than rtol (relative), or when
the runs logged different steps or tasks.
"""
import argparse
import json
import sys

parser = argparse.ArgumentParser()
parser.add_argument("a")
parser.add_argument("b")
parser.add_argument("--from-step", type=int, default=0)
parser.add_argument("--rtol", type=float, default=1e-4)
args = parser.parse_args()


def losses(path):
    out = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if record["step"] >= args.from_step:
                out[record["step"]] = record["loss"]
    return out


a, b = losses(args.a), losses(args.b)
if sorted(a) != sorted(b) or not a:
    sys.exit(f"FAIL: steps differ: {sorted(a)} vs {sorted(b)}")
worst = 0.0
for step in sorted(a):
    if sorted(a[step]) != sorted(b[step]):
        sys.exit(f"FAIL: step {step}: tasks differ: {sorted(a[step])} vs {sorted(b[step])}")
    for task, value in a[step].items():
        rel = abs(value - b[step][task]) / max(abs(value), 1e-8)
        worst = max(worst, rel)
        if rel > args.rtol:
            sys.exit(f"FAIL: step {step} {task}: {value} vs {b[step][task]} (relative {rel:.2e})")
print(f"{len(a)} steps x {len(next(iter(a.values())))} tasks equal; largest relative difference {worst:.2e}")

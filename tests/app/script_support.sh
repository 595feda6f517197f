# Sourced by the command-line test scripts (run from the repository root, after
# `set -euo pipefail`): one way to fail, a fresh run directory, the tiny recipe's arguments.

# fail MESSAGE...: ends the test with MESSAGE on stderr.
fail() { echo "FAIL: $*" >&2; exit 1; }

# fresh_dir DIR: DIR exists and is empty.
fresh_dir() { rm -rf "$1" && mkdir -p "$1"; }

# The tiny example recipe at a batch size a 2-core machine steps through quickly.
tiny=(--config examples/configs/tiny.toml --set train.batch_size=16)

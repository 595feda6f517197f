#!/usr/bin/env bash
# Writes the C++ code blocks of a Markdown file, one after the other, to OUT.
# Usage: readme_program.sh README.md OUT
set -euo pipefail
awk '/^```cpp$/ {f = 1; next} /^```$/ {f = 0} f' "$1" > "$2"

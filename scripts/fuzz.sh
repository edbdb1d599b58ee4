#!/usr/bin/env bash
# Runs every fuzz target for the given duration each (default 5s): the CI
# smoke run. For a longer hunt: scripts/fuzz.sh 10m
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-5s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "fuzz $pkg $target ($time)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$time" "$pkg" > /tmp/fuzz.$$.log 2>&1 || { cat /tmp/fuzz.$$.log; exit 1; }
  done
done
rm -f /tmp/fuzz.$$.log

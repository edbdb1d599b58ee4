#!/usr/bin/env bash
# The full test run: installs what the tests need, checks formatting and
# vet/staticcheck, runs every Go test with the race detector (unit,
# integration through real Go clients, end-to-end through kcat,
# confluent-kafka-python, kafka-python and kafkajs), then a short smoke run
# of every fuzz target; the deploy/ module (Kubernetes manifests, Helm chart,
# Dockerfile) is vetted and tested on its own. This is README's test command
# and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './test/e2e/node_modules/*'))
if [ -n "$bad" ]; then echo "gofmt would change: $bad"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go test -race"
export KAFKA_PROXY_E2E=1 KAFKA_PROXY_E2E_REQUIRE_NETNS=${KAFKA_PROXY_E2E_REQUIRE_NETNS:-1}
log=$(mktemp)
# One closing line for CI, also when a step fails (set -e ends the script
# there): test packages that passed and failed.
summary() {
  if [ -s "$log" ]; then
    echo "packages: $(grep -c '^ok' "$log") passed, $(grep -c '^FAIL[[:space:]]' "$log") failed"
  fi
  rm -f "$log"
}
trap summary EXIT
go test -race -count=1 -timeout 20m ./... 2>&1 | tee "$log"

echo "== deploy: manifests, Helm chart, Dockerfile, static binary (a module of its own)"
(
  cd deploy
  go vet ./...
  go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
  go test -count=1 -timeout 10m ./...
) 2>&1 | tee -a "$log"

echo "== fuzz smoke (${FUZZTIME:=5s} per target)"
bash scripts/fuzz.sh "$FUZZTIME"

#!/usr/bin/env bash
# The test command: vet and race-test the library and the benchmark module against a real, throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-postgres.sh
export PATH="$PATH:/usr/local/go/bin"
echo "== go vet" && go vet ./...
echo "== go test -race (library)" && go test -race -count=1 -timeout 20m ./...
if [ -f bench/go.mod ]; then
  (cd bench && echo "== go vet (bench)" && go vet ./... && echo "== go test -race (bench)" && go test -race -count=1 -timeout 20m ./...)
fi

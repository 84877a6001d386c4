#!/usr/bin/env bash
# The main job: the txbench CLI comparing pgxact with raw pgx, a naive retry loop and cockroach-go, on an embedded
# throwaway PostgreSQL (or DATABASE_URL). Extra arguments go to txbench; without any it runs the quick sweep.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/ensure-postgres.sh"
export PATH="$PATH:/usr/local/go/bin"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-quick)
# Built, then exec'd rather than go run: go run does not pass SIGTERM on, which would leave txbench (and its
# PostgreSQL) running until the sweep ends. It runs in the caller's directory, where relative -out and -cpuprofile
# paths are meant.
bin="${TMPDIR:-/tmp}/pgxact-txbench-$(id -u)"
(cd "$root/bench" && go build -o "$bin" ./cmd/txbench)
exec "$bin" "${args[@]}"

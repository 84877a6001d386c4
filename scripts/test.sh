#!/usr/bin/env bash
# The test command: vet and race-test the library and its side modules (bench, otel, examples) against a real,
# throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-postgres.sh
export PATH="$PATH:/usr/local/go/bin"
ha='^(TestHA|TestBankAcrossFailovers)$' # run in a step of their own below
for mod in . bench otel examples/sqlc; do
  [ -f "$mod/go.mod" ] || continue
  echo "== $mod: go vet"
  (cd "$mod" && go vet ./...)
  echo "== $mod: go test -race"
  (cd "$mod" && go test -race -count=1 -timeout 20m -skip "$ha" ./...)
done
# The pg_auto_failover tests on their own, one package at a time: each starts HA clusters (a monitor and two nodes
# per mode) and forces failovers, and on 2 cores they would starve the timing-bounded fault suites running beside
# them in the pass above.
echo "== . HA failover tests: go test -race -p 1"
go test -race -count=1 -timeout 30m -p 1 -run "$ha" ./pgtest ./internal/jepsen
# The library again, every connection through pgbouncer in transaction pooling mode (pgtest's
# PGXACT_TEST_POOLER, docs/scaling.md). internal/jepsen is left out: see docs/scaling.md. The HA and failover
# tests start servers of their own and connect to them directly, never through the pooler: they ran above and
# would only run again here.
echo "== . via pgbouncer: go test -race"
PGXACT_TEST_POOLER=pgbouncer go test -race -count=1 -timeout 20m -skip 'HA|AcrossFailover|AcrossRestart' \
  ./pgtest ./tx ./compose ./txtest ./retry ./replica

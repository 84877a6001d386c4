package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/pgbench"
)

// preflight checks before the sweep what would otherwise fail only when the sweep reaches it, minutes in, with
// everything measured until then thrown away: tpcb without a pgbench program (its tables are made by pgbench -i), and
// more workers than the server takes connections.
func preflight(ctx context.Context, c config, primary string) error {
	pool, err := pgxpool.New(ctx, primary)
	if err != nil {
		return fmt.Errorf("txbench: %w", err)
	}
	defer pool.Close()
	if slices.Contains(c.workloads, tpcb) {
		if _, err := pgbench.For(ctx, pool); err != nil {
			return fmt.Errorf("txbench: workload %s: %w", tpcb, err)
		}
	}
	var maxConns, reserved int
	if err := pool.QueryRow(ctx, "SELECT current_setting('max_connections')::int, "+
		"current_setting('superuser_reserved_connections')::int").Scan(&maxConns, &reserved); err != nil {
		return fmt.Errorf("txbench: the server's connection limit: %w", err)
	}
	// The pool holds up to the most workers; pgbench's clients connect beside it, and a few connections are the
	// harness's own (set-up, checks).
	need := slices.Max(c.workers)
	if c.pgbench {
		need *= 2
	}
	if limit := maxConns - reserved - preflightSpare; need > limit {
		return fmt.Errorf("%w: %d workers need %d connections; the server takes %d (max_connections %d, %d reserved, "+
			"%d for txbench itself)", errUsage, slices.Max(c.workers), need, limit, maxConns, reserved, preflightSpare)
	}
	return nil
}

// preflightSpare is what preflight leaves of the server's connections for txbench's own.
const preflightSpare = 8

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/harness"
	"github.com/pgxact/pgxact/bench/internal/pgbench"
	"github.com/pgxact/pgxact/bench/internal/workload"
)

// The names pgbench's runs have in the results, beside the Go implementations.
const (
	pgbenchBuiltin  = "pgbench"
	pgbenchPipeline = "pgbench-pipeline"
)

// pgbenchExtras returns the pgbench program's two runs, its builtin tpcb-like script and the same transaction in one
// pipeline, as extras of the tpcb cells: each gets a slice in every round, beside the Go implementations (its -T is
// whole seconds: a slice of pgbench lasts the round's slice rounded up, at least a second). It connects as the pool
// does, or through c.pgbenchConn when that is set: the same database behind a proxy, when -rtt-via client delays the
// pool's connections in a way a C program cannot use.
func pgbenchExtras(ctx context.Context, c config, pool *pgxpool.Pool, w workload.Workload) ([]harness.Extra, error) {
	client, err := pgbench.For(ctx, pool)
	if err != nil {
		return nil, err
	}
	if c.pgbenchConn != "" {
		config, err := pgconn.ParseConfig(c.pgbenchConn)
		if err != nil {
			return nil, fmt.Errorf("txbench: %w", err)
		}
		client.ConnInfo, client.Password = pgbench.ConnInfo(*config), config.Password
	}
	var extras []harness.Extra
	for _, run := range []struct {
		name   string
		script pgbench.Script
	}{{pgbenchBuiltin, pgbench.Builtin}, {pgbenchPipeline, pgbench.Pipeline}} {
		extras = append(extras, harness.Extra{Name: run.name,
			Slice: func(ctx context.Context, workers int, d time.Duration) (harness.Result, error) {
				r, err := client.Run(ctx, pgbench.Options{Script: run.script, Clients: workers, Duration: d,
					Scale: c.wl.Scale})
				if err != nil {
					return harness.Result{}, fmt.Errorf("with %d clients: %w", workers, err)
				}
				return asResult(run.name, w.Name(), workers, r), nil
			}})
	}
	return extras, nil
}

// asResult puts a pgbench run in the form of the Go implementations' results. Its commits/s is the tps pgbench
// reported, which leaves out the time its clients took to connect.
func asResult(name, wl string, workers int, r pgbench.Result) harness.Result {
	var elapsed time.Duration
	if r.TPS > 0 {
		elapsed = time.Duration(float64(r.Transactions) / r.TPS * float64(time.Second))
	}
	res := harness.Result{
		Workload: wl, Impl: name, Workers: workers, Elapsed: elapsed,
		Commits: r.Transactions, Attempts: r.Transactions + r.Failed, Errors: r.Failed,
		ErrorKinds: map[string]int64{}, Latencies: r.Latencies, InvariantOK: true,
	}
	if r.Failed > 0 {
		res.ErrorKinds["failed in pgbench"] = r.Failed
	}
	return res
}

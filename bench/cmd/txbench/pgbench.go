package main

import (
	"context"
	"errors"
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

// runPgbench runs the pgbench program with workers clients on pool's database: its builtin tpcb-like script, then
// the same transaction in one pipeline, each for c.duration in one go, with w's Reset before and Check after, as for
// a slice. It connects as the pool does, or through c.pgbenchConn when that is set: the same database behind a proxy,
// when -rtt-via client delays the pool's connections in a way a C program cannot use.
func runPgbench(ctx context.Context, c config, pool *pgxpool.Pool, w workload.Workload, workers int) ([]harness.Result, error) {
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
	var out []harness.Result
	for _, run := range []struct {
		name   string
		script pgbench.Script
	}{{pgbenchBuiltin, pgbench.Builtin}, {pgbenchPipeline, pgbench.Pipeline}} {
		if err := w.Reset(ctx, pool); err != nil {
			return nil, err
		}
		r, err := client.Run(ctx, pgbench.Options{Script: run.script, Clients: workers, Duration: c.duration,
			Scale: c.wl.Scale})
		if err != nil {
			return nil, fmt.Errorf("txbench: %s with %d clients: %w", run.name, workers, err)
		}
		res := asResult(run.name, w.Name(), workers, r)
		err = w.Check(ctx, pool, r.Transactions)
		switch {
		case errors.Is(err, workload.ErrInvariant):
			res.InvariantOK, res.Violation = false, err.Error()
		case err != nil:
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
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

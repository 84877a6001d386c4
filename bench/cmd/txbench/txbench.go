package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/harness"
	"github.com/pgxact/pgxact/bench/internal/report"
	"github.com/pgxact/pgxact/bench/internal/workload"
	"github.com/pgxact/pgxact/pgtest"
)

// errViolation makes txbench exit non-zero when a workload's invariant did not hold.
var errViolation = errors.New("txbench: invariant violated")

// run is main without the process: it returns the exit status (0 ok, 1 failure, 2 bad usage).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	connString, cleanup, err := database(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	err = execute(ctx, c, connString, args, stdout, stderr)
	cleanup(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// cleanupTimeout bounds dropping the database and stopping the server, which happen even after an interrupt.
const cleanupTimeout = 30 * time.Second

// database starts a server (DATABASE_URL's, or an embedded one) and creates a fresh database on it. cleanup drops the
// database and stops the server.
func database(ctx context.Context) (connString string, cleanup func(io.Writer), err error) {
	cluster, err := pgtest.Start(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("txbench: no PostgreSQL server: %w", err)
	}
	connString, err = cluster.CreateDatabase(ctx, "")
	if err != nil {
		_ = cluster.Stop()
		return "", nil, err
	}
	cleanup = func(stderr io.Writer) {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if config, err := pgx.ParseConfig(connString); err == nil {
			if err := cluster.DropDatabase(ctx, config.Database); err != nil {
				fmt.Fprintln(stderr, err)
			}
		}
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	return connString, cleanup, nil
}

// execute runs the sweep on the database at connString and writes what c asks for.
func execute(ctx context.Context, c config, connString string, args []string, stdout, stderr io.Writer) error {
	pool, err := newPool(ctx, connString, slices.Max(c.workers))
	if err != nil {
		return err
	}
	defer pool.Close()
	loadBefore := loadAverage()
	prog := newProgress(stderr, c.progress || isTerminal(stderr), len(c.workloads)*len(c.workers))
	var all []harness.Result
	for _, name := range c.workloads {
		rs, err := sweep(ctx, c, pool, name, prog, stdout)
		if err != nil {
			prog.done()
			return err
		}
		all = append(all, rs...)
	}
	prog.done()
	if !c.json {
		if err := report.WriteTable(stdout, all); err != nil {
			return err
		}
	}
	if c.out != "" {
		if err := writeReport(ctx, c, pool, args, loadBefore, all); err != nil {
			return err
		}
	}
	return violations(all)
}

// sweep sets up one workload and runs its cells, one per number of workers.
func sweep(ctx context.Context, c config, pool *pgxpool.Pool, name string, prog *progress,
	stdout io.Writer) ([]harness.Result, error) {
	w, err := workload.New(name, c.wl)
	if err != nil {
		return nil, err
	}
	if err := w.Setup(ctx, pool); err != nil {
		return nil, err
	}
	var all []harness.Result
	for _, n := range c.workers {
		rs, err := harness.RunCell(ctx, pool, w, c.impls, harness.Options{
			Workers: n, Duration: c.duration, Rounds: c.rounds, Seed: c.seed, Progress: prog.cell(name, n),
		})
		if err != nil {
			return nil, fmt.Errorf("txbench: %s with %d workers: %w", name, n, err)
		}
		if c.json {
			if err := report.WriteJSON(stdout, rs); err != nil {
				return nil, err
			}
		}
		all = append(all, rs...)
	}
	return all, nil
}

// newPool gives every worker a connection of its own, whatever the implementation.
func newPool(ctx context.Context, connString string, maxConns int) (*pgxpool.Pool, error) {
	config, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("txbench: %w", err)
	}
	config.MaxConns = int32(maxConns)
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("txbench: %w", err)
	}
	return pool, nil
}

func writeReport(ctx context.Context, c config, pool *pgxpool.Pool, args []string, loadBefore string,
	rs []harness.Result) error {
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return fmt.Errorf("txbench: %w", err)
	}
	if _, err := report.WritePlots(c.out, rs); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(c.out, "report.md"))
	if err != nil {
		return fmt.Errorf("txbench: %w", err)
	}
	err = report.WriteMarkdown(f, describe(ctx, c, pool, args, loadBefore), rs, true)
	return errors.Join(err, f.Close())
}

func violations(rs []harness.Result) error {
	var bad []string
	for _, r := range rs {
		if !r.InvariantOK {
			bad = append(bad, fmt.Sprintf("%s/%s/%d: %s", r.Workload, r.Impl, r.Workers, r.Violation))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w:\n  %s", errViolation, strings.Join(bad, "\n  "))
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/harness"
	"github.com/pgxact/pgxact/bench/internal/impl"
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
	// Like an unusable -cpuprofile (exit 1), but checked before the server starts: a sweep takes minutes, and
	// finding out only when writing the report would throw them away.
	made, err := prepareOut(c.out)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	succeeded := false
	defer func() {
		if !succeeded {
			removeEmpty(made) // the directories this run made, if nothing was written into them
		}
	}()
	dbs, cleanup, err := database(ctx, c.needsReplica())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer cleanup(stderr) // also when a panic ends the run: the database it made must go
	if err := preflight(ctx, c, dbs.primary); err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	err = execute(ctx, c, dbs, args, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	succeeded = true
	return 0
}

// cleanupTimeout bounds dropping the database and stopping the server, which happen even after an interrupt.
const cleanupTimeout = 30 * time.Second

// databases are the connection strings of the benchmark's database on the primary and, if one was started, on a
// streaming standby of it ("" otherwise).
type databases struct {
	primary, standby string
}

// database starts a server (DATABASE_URL's, or an embedded one) and creates a fresh database on it; withStandby
// also starts a streaming hot standby of the embedded server, which a DATABASE_URL server cannot have. cleanup
// stops the standby, drops the database and stops the server.
func database(ctx context.Context, withStandby bool) (dbs databases, cleanup func(io.Writer), err error) {
	cluster, err := pgtest.Start(ctx)
	if err != nil {
		return dbs, nil, fmt.Errorf("txbench: no PostgreSQL server: %w", err)
	}
	dbs.primary, err = cluster.CreateDatabase(ctx, "")
	if err != nil {
		_ = cluster.Stop()
		return dbs, nil, err
	}
	var standby *pgtest.Cluster
	cleanup = func(stderr io.Writer) {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if standby != nil {
			if err := standby.Stop(); err != nil {
				fmt.Fprintln(stderr, err)
			}
		}
		if config, err := pgx.ParseConfig(dbs.primary); err == nil {
			if err := cluster.DropDatabase(ctx, config.Database); err != nil {
				fmt.Fprintln(stderr, err)
			}
		}
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	if withStandby {
		if standby, err = startStandby(ctx, cluster); err != nil {
			cleanup(io.Discard)
			return dbs, nil, err
		}
		dbs.standby = standby.ConnString(databaseName(dbs.primary))
	}
	return dbs, cleanup, nil
}

// startStandby starts a streaming hot standby of cluster, after the benchmark's database exists so that the base
// backup brings it along.
func startStandby(ctx context.Context, cluster *pgtest.Cluster) (*pgtest.Cluster, error) {
	standby, err := cluster.StartReplica(ctx)
	if errors.Is(err, pgtest.ErrExternal) {
		return nil, fmt.Errorf("txbench: the pgxact-replica implementations need a standby, which txbench starts only "+
			"for its embedded server: unset DATABASE_URL to run them (%w)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("txbench: starting a standby: %w", err)
	}
	return standby, nil
}

func databaseName(connString string) string {
	config, err := pgx.ParseConfig(connString)
	if err != nil {
		return ""
	}
	return config.Database
}

// execute runs the sweep on the databases dbs and writes what c asks for.
func execute(ctx context.Context, c config, dbs databases, args []string, stdout, stderr io.Writer) error {
	r, err := delayed(ctx, dbs, c.rtt, c.rttVia, c.pgbench)
	if err != nil {
		return err
	}
	defer r.close()
	c.pgbenchConn = r.pgbench
	net, err := network(ctx, c.rtt, dbs.primary, r)
	if err != nil {
		return err
	}
	if c.rtt > 0 && !c.json {
		fmt.Fprintf(stdout, "network: %s\n", net)
	}
	pool, err := newPool(ctx, r.dbs.primary, slices.Max(c.workers), r.dial)
	if err != nil {
		return err
	}
	defer pool.Close()
	standby, err := bindStandby(ctx, &c, r)
	if err != nil {
		return err
	}
	if standby != nil {
		defer standby.Close()
	}
	loadBefore := loadAverage()
	hostBefore, err := readHost(ctx, dbs.primary)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, c.progress || isTerminal(stderr), len(c.workloads)*len(c.workers))
	stopProfile, err := startCPUProfile(c.cpuprof)
	if err != nil {
		return err
	}
	var all []harness.Result
	for _, name := range c.workloads {
		rs, err := sweep(ctx, c, pool, standby, name, prog, stdout)
		if err != nil {
			prog.done()
			_ = stopProfile()
			return err
		}
		all = append(all, rs...)
	}
	prog.done()
	if err := stopProfile(); err != nil {
		return err
	}
	hostAfter, err := readHost(ctx, dbs.primary)
	if err != nil {
		return err
	}
	host := describeHost(hostBefore, hostAfter)
	if !c.json {
		if err := report.WriteTable(stdout, all); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", host)
	}
	if c.out != "" {
		if err := writeReport(ctx, c, pool, args, loadBefore, host, net, all); err != nil {
			return err
		}
	}
	return violations(all)
}

// bindStandby opens a pool on r's standby, if c's implementations need one, with a connection open per worker,
// and gives it to them. It returns nil when no implementation needs a standby.
func bindStandby(ctx context.Context, c *config, r route) (*pgxpool.Pool, error) {
	if !c.needsReplica() {
		return nil, nil
	}
	if r.dbs.standby == "" {
		return nil, errors.New("txbench: the pgxact-replica implementations need a standby, and none was started")
	}
	standby, err := newPool(ctx, r.dbs.standby, slices.Max(c.workers), r.dial)
	if err != nil {
		return nil, err
	}
	if err := openConns(ctx, standby, slices.Max(c.workers)); err != nil {
		standby.Close()
		return nil, err
	}
	impls := make([]impl.Impl, len(c.impls))
	for i, im := range c.impls {
		impls[i] = im.OnReplica(standby)
	}
	c.impls = impls
	return standby, nil
}

// openConns makes pool hold n open connections, so that no implementation pays for opening them in its slices.
func openConns(ctx context.Context, pool *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("txbench: %w", err)
		}
		conns = append(conns, c)
	}
	return nil
}

// replayTimeout bounds waiting for the standby to replay a workload's Setup.
const replayTimeout = 30 * time.Second

// awaitReplay waits until the standby has replayed everything the primary has written so far, so that the first
// reads sent to it find the workload's tables.
func awaitReplay(ctx context.Context, primary, standby *pgxpool.Pool) error {
	var target string
	if err := primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&target); err != nil {
		return fmt.Errorf("txbench: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	for {
		var done bool
		err := standby.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target).Scan(&done)
		if err != nil {
			return fmt.Errorf("txbench: waiting for the standby to replay %s: %w", target, err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("txbench: waiting for the standby to replay %s: %w", target, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// sweep sets up one workload and runs its cells, one per number of workers.
// standby, if not nil, is a pool on the primary's standby, which must replay the setup before the first cell.
func sweep(ctx context.Context, c config, pool, standby *pgxpool.Pool, name string, prog *progress,
	stdout io.Writer) ([]harness.Result, error) {
	w, err := workload.New(name, c.wl)
	if err != nil {
		return nil, err
	}
	if err := w.Setup(ctx, pool); err != nil {
		return nil, err
	}
	if standby != nil {
		if err := awaitReplay(ctx, pool, standby); err != nil {
			return nil, err
		}
	}
	var extras []harness.Extra
	if c.pgbench && name == tpcb {
		if extras, err = pgbenchExtras(ctx, c, pool, w); err != nil {
			return nil, err
		}
	}
	var all []harness.Result
	for _, n := range c.workers {
		rs, err := harness.RunCell(ctx, pool, w, c.impls, harness.Options{
			Workers: n, Duration: c.duration, Rounds: c.rounds, Seed: c.seed, Progress: prog.cell(name, n),
			Extras: extras,
		})
		if err != nil {
			return nil, fmt.Errorf("txbench: %s with %d workers: %w", name, n, err)
		}
		if c.json {
			prog.done() // on a terminal stdout and stderr share the screen: the record must start a line of its own
			if err := report.WriteJSON(stdout, rs); err != nil {
				return nil, err
			}
		}
		all = append(all, rs...)
	}
	return all, nil
}

// newPool gives every worker a connection of its own, whatever the implementation, dialed with dial (nil: pgconn's
// own).
func newPool(ctx context.Context, connString string, maxConns int, dial pgconn.DialFunc) (*pgxpool.Pool, error) {
	config, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("txbench: %w", err)
	}
	config.MaxConns = int32(maxConns)
	if dial != nil {
		config.ConnConfig.DialFunc = dial
	}
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("txbench: %w", err)
	}
	return pool, nil
}

// prepareOut creates the report directory dir, if given, and checks that a file can be created in it, so that an
// unusable -out (a regular file, a directory that cannot be written) fails the run before the sweep does any work.
// It returns the directories it made, deepest first, for a failed run to remove.
func prepareOut(dir string) (made []string, err error) {
	if dir == "" {
		return nil, nil
	}
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		made = append(made, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		removeEmpty(made)
		return nil, fmt.Errorf("txbench: -out %s: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".txbench-probe-*")
	if err == nil {
		err = errors.Join(probe.Close(), os.Remove(probe.Name()))
	}
	if err != nil {
		removeEmpty(made)
		return nil, fmt.Errorf("txbench: -out %s: cannot write the report there: %w", dir, err)
	}
	return made, nil
}

// removeEmpty removes the directories dirs, deepest first, as long as they are empty.
func removeEmpty(dirs []string) {
	for _, d := range dirs {
		if os.Remove(d) != nil {
			return
		}
	}
}

// writeReport writes report.md and the plots into c.out, which prepareOut made.
func writeReport(ctx context.Context, c config, pool *pgxpool.Pool, args []string, loadBefore, host, net string,
	rs []harness.Result) error {
	// Made again in case it was removed during the sweep.
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
	err = report.WriteMarkdown(f, describe(ctx, c, pool, args, loadBefore, host, net), rs, true)
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

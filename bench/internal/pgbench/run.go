package pgbench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// pipelineScript is the builtin tpcb-like script with its transaction in one pipeline: every statement, BEGIN and END
// included, is sent before any result is read.
const pipelineScript = `\set aid random(1, 100000 * :scale)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
\startpipeline
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
\endpipeline
`

// Script chooses what pgbench runs.
type Script int

const (
	// Builtin is pgbench's tpcb-like script: BEGIN, five statements and END, one round trip each.
	Builtin Script = iota
	// Pipeline is the same transaction between \startpipeline and \endpipeline: one round trip in all.
	Pipeline
)

// Options configures Run. Clients must be positive.
type Options struct {
	Script  Script
	Clients int
	// Threads is pgbench's -j; 0 means one per client up to the number of CPUs.
	Threads int
	// Duration is rounded up to whole seconds, pgbench's -T, and is at least one.
	Duration time.Duration
	// Scale is the scale the tables were made with, which the Pipeline script needs as :scale (the builtin script
	// reads it from pgbench_branches).
	Scale int
}

// Run runs pgbench with prepared statements (-M prepared), without its vacuum (-n), logging every transaction's
// latency, and returns what it reported.
func (c Client) Run(ctx context.Context, o Options) (Result, error) {
	if o.Clients < 1 {
		return Result{}, fmt.Errorf("pgbench: need at least one client, got %d", o.Clients)
	}
	dir, err := os.MkdirTemp("", "txbench-pgbench-")
	if err != nil {
		return Result{}, fmt.Errorf("pgbench: %w", err)
	}
	defer os.RemoveAll(dir)
	args, err := o.args(dir)
	if err != nil {
		return Result{}, err
	}
	out, err := c.command(ctx, dir, args...)
	if err != nil {
		return Result{}, err
	}
	res, err := Parse(out)
	if err != nil {
		return Result{}, err
	}
	res.Latencies, err = readLogs(dir)
	return res, err
}

// Seconds is what pgbench's -T makes of d: d rounded up to whole seconds, at least one.
func Seconds(d time.Duration) int { return max(1, int(math.Ceil(d.Seconds()))) }

// logPrefix names pgbench's per-transaction logs in the run's directory.
const logPrefix = "tx"

func (o Options) args(dir string) ([]string, error) {
	threads := o.Threads
	if threads <= 0 {
		threads = min(o.Clients, runtime.NumCPU())
	}
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(o.Clients), "-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(Seconds(o.Duration)), "-l", "--log-prefix=" + logPrefix}
	if o.Script == Builtin {
		return append(args, "-b", "tpcb-like"), nil
	}
	script := filepath.Join(dir, "tpcb-pipeline.sql")
	if err := os.WriteFile(script, []byte(pipelineScript), 0o644); err != nil {
		return nil, fmt.Errorf("pgbench: %w", err)
	}
	return append(args, "-s", strconv.Itoa(max(o.Scale, 1)), "-f", script), nil
}

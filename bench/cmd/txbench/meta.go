package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/pgbench"
	"github.com/pgxact/pgxact/bench/internal/report"
)

// describe records how the figures were made.
// loadBefore is the load average when the sweep began: the server and the benchmark share the machine, and anything
// else running on it shows in the figures.
// host is describeHost's sentence, for the same reason.
// net says how the benchmark reaches the server.
func describe(ctx context.Context, c config, pool *pgxpool.Pool, args []string, loadBefore, host, net string) report.Meta {
	server := "unknown"
	_ = pool.QueryRow(ctx, "SHOW server_version").Scan(&server)
	return report.Meta{
		Command: strings.Join(append([]string{"txbench"}, args...), " "),
		Machine: fmt.Sprintf("%d CPUs (%s), GOMAXPROCS %d, %s/%s", runtime.NumCPU(), cpuModel(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH) +
			fmt.Sprintf("; load average (1, 5, 15 min) %s before, %s after; %s", loadBefore, loadAverage(), host),
		Software: fmt.Sprintf("Go %s, PostgreSQL %s on the same machine, %s", runtime.Version(), server, net) +
			standbyNote(c),
		Settings: fmt.Sprintf("%v per implementation per cell, in %d interleaved rounds; pool MaxConns %d; "+
			"transfer: %d accounts; reads and chain: k=%d; tpcb: scale %d; seed %d", c.duration, c.rounds,
			slices.Max(c.workers), c.wl.Accounts, c.wl.K, c.wl.Scale, c.seed) + pgbenchNote(c),
	}
}

func standbyNote(c config) string {
	if !c.needsReplica() {
		return ""
	}
	return "; the pgxact-replica implementations also use one streaming hot standby, on the same machine"
}

func pgbenchNote(c config) string {
	if !c.pgbench {
		return ""
	}
	return fmt.Sprintf("; pgbench -M prepared -T %d in every round of each tpcb cell, beside the Go implementations, "+
		"-j one thread per client up to %d", pgbench.Seconds(c.duration/time.Duration(c.rounds)), runtime.NumCPU())
}

// cpuModel reads the CPU's name on Linux.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if key, value, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}

// loadAverage returns the first three fields of /proc/loadavg, or "unknown".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if fields := strings.Fields(string(data)); err == nil && len(fields) >= 3 {
		return strings.Join(fields[:3], " ")
	}
	return "unknown"
}

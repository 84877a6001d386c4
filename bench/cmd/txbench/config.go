package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgxact/pgxact/bench/internal/impl"
	"github.com/pgxact/pgxact/bench/internal/workload"
)

// config is the parsed command line.
type config struct {
	workloads []string
	impls     []impl.Impl
	workers   []int
	duration  time.Duration // per implementation and cell
	rounds    int
	wl        workload.Config
	seed      uint64
	json      bool
	out       string
	progress  bool
	rtt       time.Duration // added to every round trip; 0: none
	rttVia    string        // how: viaClient or viaProxy
	pgbench   bool          // run the pgbench program on tpcb too
	cpuprof   string        // file to write a CPU profile of the measured cells to; "": none

	pgbenchConn string // set by execute: the connection string pgbench uses, when not the pool's
}

// What -quick sets, unless the flag is given explicitly too.
const (
	quickDuration = 200 * time.Millisecond
	quickRounds   = 2
	quickWorkers  = "1,4"
)

var errUsage = errors.New("txbench: bad usage")

// tpcb is the workload that -pgbench compares with the pgbench program.
const tpcb = "tpcb"

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("txbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workloads := fs.String("workloads", strings.Join(workload.Names(), ","), "comma-separated workloads: "+
		strings.Join(append(workload.Names(), workload.Optional()...), ", ")+" (tpcb runs at READ COMMITTED for every "+
		"implementation, as pgbench does; the others at SERIALIZABLE)")
	impls := fs.String("impls", strings.Join(impl.Defaults(), ","), "comma-separated implementations: "+
		strings.Join(impl.Names(), ", ")+" (pgxact-replica* start a streaming standby of the embedded server)")
	workers := fs.String("workers", "1,4,16,32,64", "comma-separated numbers of concurrent workers")
	duration := fs.Duration("duration", 2*time.Second, "measured time per implementation in each (workload, workers) cell")
	rounds := fs.Int("rounds", 4, "slices each implementation's time is split into, interleaved with the others'")
	accounts := fs.Int("accounts", 10, "transfer: number of accounts, at least 3 (few means hot)")
	k := fs.Int("k", 5, "reads, chain, readheavy: statements (rows read) per transaction")
	scale := fs.Int("scale", 10, "tpcb: pgbench's scale factor (pgbench -i -s), 100,000 accounts, 10 tellers and "+
		"1 branch each")
	rtt := fs.Duration("rtt", 0, "add this round-trip time to every connection, the way -rtt-via says (0: connect "+
		"directly)")
	rttVia := fs.String("rtt-via", viaClient, "with -rtt: "+viaClient+" holds back each write of the pools' "+
		"connections by the round trip, costing the host one timer per write as a network would cost it nothing "+
		"(pgbench, a C program, goes through a proxy); "+viaProxy+" puts every connection, pgbench's too, through a "+
		"delaying TCP proxy in this process, which relays every byte on the shared CPUs")
	withPgbench := fs.Bool("pgbench", false, "also run the pgbench program on tpcb at each number of workers (as "+
		"clients, -M prepared, at READ COMMITTED), with its builtin tpcb-like script and with the same transaction "+
		"in one \\startpipeline, a slice of each in every round beside the Go implementations (-T: the round's slice, "+
		"duration/rounds, rounded up to whole seconds, at least one, so with slices under a second, as with -quick, "+
		"pgbench runs longer than they do); adds tpcb to -workloads")
	seed := fs.Uint64("seed", 1, "seed of the transactions' random parameters")
	asJSON := fs.Bool("json", false, "write one JSON object per (workload, impl, workers) on stdout instead of the table")
	out := fs.String("out", "", "directory to write report.md and SVG plots into")
	quick := fs.Bool("quick", false, "short run: 200ms per cell in 2 rounds, workers 1,4 (explicit flags win)")
	progress := fs.Bool("progress", false, "show progress on stderr even when it is not a terminal")
	cpuprof := fs.String("cpuprofile", "", "write a CPU profile of this process (clients and -rtt proxy, not the "+
		"server) over the measured cells to this file")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *quick {
		applyQuick(fs, duration, rounds, workers)
	}
	c := config{duration: *duration, rounds: *rounds, seed: *seed, json: *asJSON, out: *out, progress: *progress,
		wl: workload.Config{Accounts: *accounts, K: *k, Scale: *scale}, rtt: *rtt, rttVia: *rttVia, pgbench: *withPgbench, cpuprof: *cpuprof}
	if c.pgbench && !slices.Contains(split(*workloads), tpcb) {
		*workloads += "," + tpcb
	}
	return c, c.fill(*workloads, *impls, *workers)
}

// applyQuick shortens the run, leaving alone the flags given explicitly.
func applyQuick(fs *flag.FlagSet, duration *time.Duration, rounds *int, workers *string) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["duration"] {
		*duration = quickDuration
	}
	if !set["rounds"] {
		*rounds = quickRounds
	}
	if !set["workers"] {
		*workers = quickWorkers
	}
}

// fill parses and checks the list flags.
func (c *config) fill(workloads, impls, workers string) error {
	if c.duration <= 0 || c.rounds < 1 || c.wl.Scale < 1 {
		return fmt.Errorf("%w: -duration, -rounds and -scale must be positive", errUsage)
	}
	if c.rtt < 0 {
		return fmt.Errorf("%w: -rtt must not be negative", errUsage)
	}
	if c.rttVia != viaClient && c.rttVia != viaProxy {
		return fmt.Errorf("%w: -rtt-via must be %s or %s, not %q", errUsage, viaClient, viaProxy, c.rttVia)
	}
	c.workloads = split(workloads)
	for _, name := range c.workloads {
		if _, err := workload.New(name, c.wl); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
	}
	for _, name := range split(impls) {
		im, err := impl.ByName(name)
		if err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		c.impls = append(c.impls, im)
	}
	for _, s := range split(workers) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("%w: -workers: %q is not a positive number", errUsage, s)
		}
		c.workers = append(c.workers, n)
	}
	if len(c.workloads) == 0 || len(c.impls) == 0 || len(c.workers) == 0 {
		return fmt.Errorf("%w: -workloads, -impls and -workers must not be empty", errUsage)
	}
	if c.duration/time.Duration(c.rounds) < minSlice {
		return fmt.Errorf("%w: -duration %v in %d rounds gives slices under %v, too short to measure", errUsage,
			c.duration, c.rounds, minSlice)
	}
	return c.checkFlows()
}

// minSlice is the shortest time one round of one cell may run.
const minSlice = time.Millisecond

// checkFlows refuses a workload run through flows (readheavy) together with implementations that cannot run them:
// those would run a different transaction, and the table would set their figures side by side as if it were the same.
func (c *config) checkFlows() error {
	for _, name := range c.workloads {
		w, _ := workload.New(name, c.wl)
		if _, ok := w.(workload.Flowing); !ok {
			continue
		}
		for _, im := range c.impls {
			if !im.Flows {
				return fmt.Errorf("%w: workload %s runs only with the pgxact implementations (its read-your-writes "+
					"flow is theirs), not %s", errUsage, name, im.Name)
			}
		}
	}
	return nil
}

// needsReplica reports whether an implementation reads from a standby.
func (c config) needsReplica() bool {
	return slices.ContainsFunc(c.impls, impl.Impl.NeedsReplica)
}

func split(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

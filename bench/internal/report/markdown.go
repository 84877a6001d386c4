package report

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/pgxact/pgxact/bench/internal/harness"
)

// Meta describes the run a report is about, so that its figures can be reproduced and judged.
type Meta struct {
	Command  string // the exact command line
	Machine  string // CPU count and model
	Software string // Go and PostgreSQL versions
	Settings string // durations, rounds, pool size, workload parameters
}

// reference is the implementation the ratio tables compare with the others.
const reference = "pgxact"

// WriteMarkdown writes the report: how it was made, pgxact's figures relative to each other implementation, then
// for each workload its plots (when withPlots; WritePlots makes them) and every figure.
func WriteMarkdown(w io.Writer, m Meta, results []harness.Result, withPlots bool) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "# txbench results\n\n")
	fmt.Fprintf(b, "- Command: `%s`\n- Machine: %s\n- Software: %s\n- Settings: %s\n\n", m.Command, m.Machine,
		m.Software, m.Settings)
	fmt.Fprintf(b, "Every implementation runs at SERIALIZABLE on the same pool, except on tpcb, which every one of them "+
		"runs at READ COMMITTED, as pgbench does, on readheavy, whose reads run at REPEATABLE READ (what a standby "+
		"takes), and unsafe-rc, which always runs at READ COMMITTED to show what that loses. commits/s counts committed transactions only; attempts counts every "+
		"try, failed ones included; latencies are those of committed transactions, retries included; errors are "+
		"transactions that failed for good. Every figure counts the transactions that returned within their slice's "+
		"time; each worker's last one, still running when the time was up, returns after it and is left out (the "+
		"drain runs below the worker count).\n\n")
	if hasPgbench(results) {
		fmt.Fprintf(b, "%s\n\n", pgbenchNote)
	}
	writeRatios(b, results)
	writeRoundVerdicts(b, results)
	if hasPgbench(results) {
		fmt.Fprintf(b, "## pgxact relative to pgbench\n\n")
		_ = writePgbenchRatios(b, results, "- ")
		fmt.Fprintln(b)
	}
	for _, wl := range workloads(results) {
		rs := only(results, wl)
		fmt.Fprintf(b, "## %s\n\n", wl)
		if withPlots {
			for _, mt := range metrics {
				fmt.Fprintf(b, "![%s: %s](%s)\n", wl, mt.title, plotFile(wl, mt))
			}
			fmt.Fprintln(b)
		}
		writeFigures(b, rs)
		if hasTrouble(rs) {
			fmt.Fprintf(b, "\nErrors and violations:\n\n")
			_ = writeErrorKinds(b, rs, "- ")
		}
		fmt.Fprintln(b)
	}
	return b.Flush()
}

func writeFigures(b *bufio.Writer, rs []harness.Result) {
	fmt.Fprintln(b, "| impl | workers | commits/s | attempts/commit | p50 ms | p99 ms | errors | invariant |")
	fmt.Fprintln(b, "|---|--:|--:|--:|--:|--:|--:|---|")
	for _, r := range rs {
		rec := NewRecord(r)
		fmt.Fprintf(b, "| %s | %d | %.0f | %.2f | %.2f | %.2f | %d | %s |\n", rec.Impl, rec.Workers, rec.CommitsPerSec,
			rec.AttemptsPerCommit, rec.P50Ms, rec.P99Ms, rec.Errors, invariant(r))
	}
}

func hasTrouble(rs []harness.Result) bool {
	for _, r := range rs {
		if r.Errors > 0 || !r.InvariantOK {
			return true
		}
	}
	return false
}

// writeRatios tabulates pgxact's commits/s and p99 latency divided by each other implementation's, per workload and
// number of workers, and pgxact's goodput relative to its own at 4 workers.
func writeRatios(b *bufio.Writer, results []harness.Result) {
	others := slicesWithout(impls(results), reference)
	if len(others) == len(impls(results)) || len(others) == 0 {
		return
	}
	fmt.Fprintf(b, "## pgxact relative to the others\n\n")
	fmt.Fprintf(b, "Each cell is pgxact's figure divided by the column's: commits/s (higher is better for pgxact), "+
		"then p99 latency (lower is better for pgxact). In brackets after a commits/s ratio, the lowest and highest "+
		"of the same ratio in single rounds (the implementations ran round by round, interleaved): how much of it is "+
		"noise. The last column is pgxact's commits/s relative to its own at 4 workers.\n\n")
	fmt.Fprintf(b, "| workload | workers | %s | %s | pgxact vs 4 workers |\n",
		strings.Join(prefixed(others, "commits/s vs "), " | "), strings.Join(prefixed(others, "p99 vs "), " | "))
	fmt.Fprintf(b, "|---|--:|%s--:|\n", strings.Repeat("--:|", 2*len(others)))
	_ = eachReference(results, func(wl string, n int, ref harness.Result, rs []harness.Result) error {
		var cells []string
		for _, o := range others {
			other, _ := find(rs, o, n) // none: the zero Result, which committed nothing
			cell := ratio(ref.CommitsPerSec(), other.CommitsPerSec())
			if lo, hi, ok := spread(ref, other); ok && cell != "–" {
				cell += fmt.Sprintf(" (%.2f–%.2f)", lo, hi)
			}
			cells = append(cells, cell)
		}
		for _, o := range others {
			cells = append(cells, ratio(ms(ref, 99), valueOf(rs, o, n, func(r harness.Result) float64 { return ms(r, 99) })))
		}
		at4 := valueOf(rs, reference, 4, harness.Result.CommitsPerSec)
		cells = append(cells, ratio(ref.CommitsPerSec(), at4))
		_, err := fmt.Fprintf(b, "| %s | %d | %s |\n", wl, n, strings.Join(cells, " | "))
		return err
	})
	fmt.Fprintln(b)
}

// eachReference calls f, in order, for each workload and number of workers at which the reference ran, with its
// result there and all of the workload's results, and stops at f's first error.
func eachReference(results []harness.Result, f func(wl string, n int, ref harness.Result, rs []harness.Result) error) error {
	for _, wl := range workloads(results) {
		rs := only(results, wl)
		for _, n := range workerCounts(rs) {
			if ref, ok := find(rs, reference, n); ok {
				if err := f(wl, n, ref, rs); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// spread is the lowest and highest ratio of a's commits/s to b's in the rounds both ran, round i to round i; ok is
// false with fewer than two such rounds, or when b committed nothing in one of them.
func spread(a, b harness.Result) (lo, hi float64, ok bool) {
	xs := roundRatios(a, b)
	if len(xs) < 2 {
		return 0, 0, false
	}
	return slices.Min(xs), slices.Max(xs), true
}

func ratio(a, b float64) string {
	if b <= 0 || a <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func find(rs []harness.Result, impl string, workers int) (harness.Result, bool) {
	for _, r := range rs {
		if r.Impl == impl && r.Workers == workers {
			return r, true
		}
	}
	return harness.Result{}, false
}

func valueOf(rs []harness.Result, impl string, workers int, f func(harness.Result) float64) float64 {
	r, ok := find(rs, impl, workers)
	if !ok {
		return 0
	}
	return f(r)
}

func slicesWithout(names []string, drop string) []string {
	var out []string
	for _, n := range names {
		if n != drop {
			out = append(out, n)
		}
	}
	return out
}

func prefixed(names []string, prefix string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

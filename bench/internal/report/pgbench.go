package report

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/pgxact/pgxact/bench/internal/harness"
)

// pgbenchImpls are the names txbench gives the runs of the pgbench program, in the order they are compared.
var pgbenchImpls = []string{"pgbench", "pgbench-pipeline"}

const pgbenchNote = "pgbench and pgbench-pipeline are the pgbench program itself on the same server and tables, " +
	"at READ COMMITTED with -M prepared and one client per worker: its builtin tpcb-like script (BEGIN, five " +
	"statements and END, one round trip each), and the same transaction between \\startpipeline and \\endpipeline " +
	"(one round trip). Their commits/s is the tps pgbench reports, without connection time; their latencies come " +
	"from its per-transaction log. Each ran a slice in every round, interleaved with the Go implementations, for the " +
	"round's slice rounded up to whole seconds (its -T), at least one; in brackets, where the rounds give one, the " +
	"median of the round ratios and its sign-test interval."

func hasPgbench(rs []harness.Result) bool {
	for _, r := range rs {
		if isPgbench(r.Impl) {
			return true
		}
	}
	return false
}

func isPgbench(impl string) bool { return slices.Contains(pgbenchImpls, impl) }

// writePgbenchRatios writes a line per workload and number of workers where pgbench ran: pgxact's commits/s and how
// it compares with each pgbench run's.
func writePgbenchRatios(w io.Writer, results []harness.Result, indent string) error {
	return eachReference(results, func(wl string, n int, ref harness.Result, rs []harness.Result) error {
		var parts []string
		for _, name := range pgbenchImpls {
			if o, ok := find(rs, name, n); ok {
				part := fmt.Sprintf("%s %s's %.0f", ratio(ref.CommitsPerSec(), o.CommitsPerSec()), name,
					o.CommitsPerSec())
				if median, lo, hi, _, ok := medianInterval(roundRatios(ref, o), roundLevel); ok {
					part += fmt.Sprintf(" [rounds: median %.2f×, %.2f–%.2f]", median, lo, hi)
				}
				parts = append(parts, part)
			}
		}
		if len(parts) == 0 {
			return nil
		}
		_, err := fmt.Fprintf(w, "%s%s/%d: pgxact %.0f commits/s = %s\n", indent, wl, n, ref.CommitsPerSec(),
			strings.Join(parts, ", "))
		return err
	})
}

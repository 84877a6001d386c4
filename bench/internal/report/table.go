package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/pgxact/pgxact/bench/internal/harness"
)

// WriteTable writes results as an aligned plain-text table, with the kinds of errors after each row that had any.
func WriteTable(w io.Writer, results []harness.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\timpl\tworkers\tcommits/s\tattempts/commit\tp50 ms\tp99 ms\terrors\tinvariant\t")
	for _, r := range results {
		rec := NewRecord(r)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%s\t\n", rec.Workload, rec.Impl, rec.Workers,
			rec.CommitsPerSec, rec.AttemptsPerCommit, rec.P50Ms, rec.P99Ms, rec.Errors, invariant(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeErrorKinds(w, results, "  "); err != nil {
		return err
	}
	if err := writePgbenchRatios(w, results, "  "); err != nil {
		return err
	}
	return writeCounts(w, results, "  ")
}

// writeCounts lists, for each result whose workload counted something, the counts by name.
func writeCounts(w io.Writer, results []harness.Result, indent string) error {
	for _, r := range results {
		if len(r.Counts) == 0 {
			continue
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Counts)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Counts[k]))
		}
		if _, err := fmt.Fprintf(w, "%s%s/%s/%d: %s\n", indent, r.Workload, r.Impl, r.Workers,
			strings.Join(parts, ", ")); err != nil {
			return err
		}
	}
	return nil
}

func invariant(r harness.Result) string {
	if r.InvariantOK {
		return "ok"
	}
	return "VIOLATED"
}

// writeErrorKinds lists, for each result with errors or a violation, what they were.
func writeErrorKinds(w io.Writer, results []harness.Result, indent string) error {
	for _, r := range results {
		if r.Errors == 0 && r.InvariantOK {
			continue
		}
		line := fmt.Sprintf("%s%s/%s/%d:", indent, r.Workload, r.Impl, r.Workers)
		if r.Errors > 0 {
			line += " errors " + strings.Join(r.TopErrorKinds(), ", ")
		}
		if !r.InvariantOK {
			line += "; violation: " + r.Violation
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

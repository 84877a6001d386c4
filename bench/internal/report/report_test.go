package report_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/harness"
	"github.com/pgxact/pgxact/bench/internal/report"
)

func result(impl string, workers int, commits int64, latency time.Duration) harness.Result {
	r := harness.Result{Workload: "transfer", Impl: impl, Workers: workers, Elapsed: time.Second, Commits: commits,
		Attempts: 2 * commits, InvariantOK: true}
	for range commits {
		r.Latencies = append(r.Latencies, latency)
	}
	return r
}

func TestRecord(t *testing.T) {
	t.Run("summarises a result", func(t *testing.T) {
		r := result("pgxact", 4, 100, 0)
		for i := range r.Latencies {
			r.Latencies[i] = time.Duration(i+1) * time.Millisecond
		}
		rec := report.NewRecord(r)
		require.Equal(t, 100.0, rec.CommitsPerSec)
		require.Equal(t, 2.0, rec.AttemptsPerCommit)
		require.Equal(t, 50.0, rec.P50Ms)
		require.Equal(t, 99.0, rec.P99Ms)
	})
	t.Run("is encodable when nothing committed", func(t *testing.T) {
		var buf bytes.Buffer
		require.NoError(t, report.WriteJSON(&buf, []harness.Result{result("pgx", 64, 0, 0)}))
		var rec map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
		require.Equal(t, 0.0, rec["attempts_per_commit"])
		require.Equal(t, 0.0, rec["p99_ms"])
	})
}

func TestMarkdownComparesPgxactWithEachOtherImplementation(t *testing.T) {
	rs := []harness.Result{
		result("pgxact", 4, 300, time.Millisecond), result("pgx", 4, 100, 4*time.Millisecond),
		result("pgxact", 16, 200, time.Millisecond), result("pgx", 16, 0, 0),
	}
	rs[3].Errors, rs[3].ErrorKinds = 7, map[string]int64{"40001": 7}
	var buf bytes.Buffer
	require.NoError(t, report.WriteMarkdown(&buf, report.Meta{Command: "txbench -x"}, rs, true))
	md := buf.String()
	require.Contains(t, md, "`txbench -x`")
	require.Contains(t, md, "| transfer | 4 | 3.00× | 0.25× | 1.00× |")
	require.Contains(t, md, "| transfer | 16 | – | – | 0.67× |", "nothing to divide by when pgx committed nothing")
	require.Contains(t, md, "![transfer: commits/s](transfer-commits.svg)")
	require.Contains(t, md, "transfer/pgx/16: errors 40001×7")
}

func TestMarkdownWithoutPgxactHasNoRatios(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, report.WriteMarkdown(&buf, report.Meta{}, []harness.Result{result("pgx", 1, 5, 0)}, false))
	require.NotContains(t, buf.String(), "relative to")
	require.False(t, strings.Contains(buf.String(), ".svg"))
}

func TestPgbenchRunsAreComparedWithPgxact(t *testing.T) {
	rs := []harness.Result{result("pgxact", 16, 300, time.Millisecond), result("pgbench", 16, 100, time.Millisecond),
		result("pgbench-pipeline", 16, 600, time.Millisecond)}
	for i := range rs {
		rs[i].Workload = "tpcb"
	}
	want := "tpcb/16: pgxact 300 commits/s = 3.00× pgbench's 100, 0.50× pgbench-pipeline's 600"
	var table, md bytes.Buffer
	require.NoError(t, report.WriteTable(&table, rs))
	require.Contains(t, table.String(), want)
	require.NoError(t, report.WriteMarkdown(&md, report.Meta{}, rs, false))
	require.Contains(t, md.String(), "- "+want)
	require.Contains(t, md.String(), "between \\startpipeline and \\endpipeline")
}

// With six rounds or more, each pgbench ratio carries the median of its round ratios, round i against round i, and
// the median's sign-test interval.
func TestPgbenchRatiosShowTheirRoundInterval(t *testing.T) {
	pgxact := withRounds(result("pgxact", 16, 0, time.Millisecond), 100, 200, 100, 200, 100, 200, 100, 200, 100)
	pgbench := withRounds(result("pgbench", 16, 0, time.Millisecond), 50, 400, 80, 100, 100, 250, 125, 160, 200)
	pgxact.Workload, pgbench.Workload = "tpcb", "tpcb"
	// Round ratios 2, 0.5, 1.25, 2, 1, 0.8, 0.8, 1.25, 0.5: sorted, the median is the fifth, 1.0, and at nine rounds
	// the interval is from the second to the eighth (coverage 96 %). Paired the wrong way (sorted first), the
	// medians would differ.
	var table bytes.Buffer
	require.NoError(t, report.WriteTable(&table, []harness.Result{pgxact, pgbench}))
	require.Contains(t, table.String(),
		"tpcb/16: pgxact 144 commits/s = 0.89× pgbench's 163 [rounds: median 1.00×, 0.50–2.00]")
}

// withRounds gives r one round of a second per commit count, and the totals they add up to.
func withRounds(r harness.Result, commits ...int64) harness.Result {
	r.Rounds, r.Commits, r.Elapsed = nil, 0, 0
	for _, c := range commits {
		r.Rounds = append(r.Rounds, harness.Round{Elapsed: time.Second, Commits: c})
		r.Commits += c
		r.Elapsed += time.Second
	}
	return r
}

func TestMarkdownShowsTheSpreadOfEachRatioOverRounds(t *testing.T) {
	for _, c := range []struct {
		name     string
		pgxact   []int64
		pgx      []int64
		wantCell string
	}{
		{name: "lowest and highest round", pgxact: []int64{100, 120, 90}, pgx: []int64{100, 80, 100},
			wantCell: "| transfer | 4 | 1.11× (0.90–1.50) |"},
		{name: "one round has no spread", pgxact: []int64{100}, pgx: []int64{50}, wantCell: "| transfer | 4 | 2.00× |"},
		{name: "a round where pgx committed nothing", pgxact: []int64{100, 100}, pgx: []int64{50, 0},
			wantCell: "| transfer | 4 | 4.00× |"},
	} {
		t.Run(c.name, func(t *testing.T) {
			md := roundsMarkdown(t, c.pgxact, c.pgx)
			require.Contains(t, md, c.wantCell)
		})
	}
}

// roundsMarkdown is the markdown report of one transfer cell at 4 workers whose rounds committed pgxact and pgx.
func roundsMarkdown(t *testing.T, pgxact, pgx []int64) string {
	t.Helper()
	rs := []harness.Result{
		withRounds(result("pgxact", 4, 0, time.Millisecond), pgxact...),
		withRounds(result("pgx", 4, 0, time.Millisecond), pgx...),
	}
	var buf bytes.Buffer
	require.NoError(t, report.WriteMarkdown(&buf, report.Meta{}, rs, false))
	return buf.String()
}

// TestPlotsForOneOrManyWorkerCounts: the plots are written for a sweep of several worker counts (log axis) and for a
// single one, which a log axis could not show.
func TestPlotsForOneOrManyWorkerCounts(t *testing.T) {
	sweeps := map[string][]harness.Result{
		"one worker count":   {result("pgxact", 1, 10, time.Millisecond), result("pgx", 1, 8, time.Millisecond)},
		"many worker counts": {result("pgxact", 1, 10, time.Millisecond), result("pgxact", 16, 90, time.Millisecond)},
	}
	for name, rs := range sweeps {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			files, err := report.WritePlots(dir, rs)
			require.NoError(t, err)
			require.Len(t, files, 3)
			for _, f := range files {
				b, err := os.ReadFile(filepath.Join(dir, f))
				require.NoError(t, err)
				require.Contains(t, string(b), "<svg")
			}
		})
	}
}

// TestMarkdownTellsADifferenceFromNoise: with enough rounds, a cell is called above or below 1.0 only when the sign
// test's interval for the median round ratio lies wholly on that side; with too few rounds the section is left out.
func TestMarkdownTellsADifferenceFromNoise(t *testing.T) {
	for _, c := range []struct {
		name     string
		pgxact   []int64
		pgx      []int64
		wantCell string // "" for no section
	}{
		{name: "every round lower", pgxact: []int64{90, 95, 97, 92, 99, 93}, pgx: hundreds(6),
			wantCell: "| transfer | 4 | 0.94× [0.90–0.99, 96.9 %] **below 1** |"},
		{name: "every round higher", pgxact: []int64{110, 101, 120, 105, 130, 115}, pgx: hundreds(6),
			wantCell: "| transfer | 4 | 1.12× [1.01–1.30, 96.9 %] above 1 |"},
		{name: "one round across 1.0", pgxact: []int64{90, 95, 97, 92, 101, 93}, pgx: hundreds(6),
			wantCell: "| transfer | 4 | 0.94× [0.90–1.01, 96.9 %] not told from 1 |"},
		{name: "five rounds are too few", pgxact: []int64{90, 95, 97, 92, 99}, pgx: hundreds(5)},
	} {
		t.Run(c.name, func(t *testing.T) {
			md := roundsMarkdown(t, c.pgxact, c.pgx)
			if c.wantCell == "" {
				require.NotContains(t, md, "Round by round")
				return
			}
			require.Contains(t, md, "## Round by round")
			require.Contains(t, md, c.wantCell)
		})
	}
}

// hundreds is n rounds of 100 commits each.
func hundreds(n int) []int64 {
	c := make([]int64, n)
	for i := range c {
		c[i] = 100
	}
	return c
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// execArgs parses args and runs txbench on a private database, as run does after starting a server.
func execArgs(t *testing.T, args ...string) string {
	t.Helper()
	c, err := parseFlags(args, io.Discard)
	require.NoError(t, err)
	var stdout bytes.Buffer
	require.NoError(t, execute(t.Context(), c, pgtest.ConnString(t), args, &stdout, io.Discard))
	return stdout.String()
}

func TestJSONOutputHasExactlyTheTwelveFieldsPerCell(t *testing.T) {
	out := execArgs(t, "-json", "-workloads", "single,transfer", "-impls", "pgxact,pgx", "-workers", "1,2",
		"-duration", "100ms", "-rounds", "1")
	want := []string{"attempts", "attempts_per_commit", "commits", "commits_per_sec", "errors", "impl",
		"invariant_ok", "p50_ms", "p99_ms", "seconds", "workers", "workload"}
	var cells []string
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(s.Bytes(), &rec), "line %q", s.Text())
		require.Equal(t, want, slices.Sorted(maps.Keys(rec)))
		require.Equal(t, true, rec["invariant_ok"])
		require.Positive(t, rec["commits"])
		cells = append(cells, rec["workload"].(string)+"/"+rec["impl"].(string))
	}
	require.Len(t, cells, 2*2*2, "one object per (workload, impl, workers)")
}

func TestOutWritesMarkdownReportAndThreePlotsPerWorkload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	table := execArgs(t, "-out", dir, "-workloads", "reads,chain", "-impls", "pgxact,pgx,crdb", "-workers", "1,2",
		"-duration", "60ms", "-rounds", "2")
	require.Contains(t, table, "commits/s")
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	for _, want := range []string{"## reads", "## chain", "| pgxact | 2 |", "commits/s vs crdb", "(chain-p99.svg)"} {
		require.Contains(t, string(md), want)
	}
	for _, wl := range []string{"reads", "chain"} {
		for _, m := range []string{"commits", "attempts", "p99"} {
			svg, err := os.ReadFile(filepath.Join(dir, wl+"-"+m+".svg"))
			require.NoError(t, err)
			require.Contains(t, string(svg), "<svg")
			require.Contains(t, string(svg), "pgxact", "the legend names the implementations")
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Run("quick shortens what was not given explicitly", func(t *testing.T) {
		c, err := parseFlags([]string{"-quick", "-workers", "3"}, io.Discard)
		require.NoError(t, err)
		require.Equal(t, []int{3}, c.workers)
		require.Equal(t, quickDuration, c.duration)
		require.Equal(t, quickRounds, c.rounds)
	})
	t.Run("defaults are the full sweep", func(t *testing.T) {
		c, err := parseFlags(nil, io.Discard)
		require.NoError(t, err)
		require.Equal(t, []int{1, 4, 16, 32, 64}, c.workers)
		require.Equal(t, 2*time.Second, c.duration)
		require.Equal(t, []string{"single", "reads", "chain", "transfer"}, c.workloads)
		require.Len(t, c.impls, 5)
		require.Equal(t, 10, c.wl.Accounts)
		require.Equal(t, 5, c.wl.K)
	})
	bad := []struct {
		name string
		args []string
	}{
		{"an unknown workload", []string{"-workloads", "single,nope"}},
		{"an unknown implementation", []string{"-impls", "pgxact,nope"}},
		{"a worker count of zero", []string{"-workers", "0"}},
		{"a worker count that is not a number", []string{"-workers", "4,x"}},
		{"a single account", []string{"-accounts", "1"}},
		{"a negative duration", []string{"-duration", "-1s"}},
		{"stray arguments", []string{"extra"}},
	}
	for _, b := range bad {
		t.Run("rejects "+b.name, func(t *testing.T) {
			_, err := parseFlags(b.args, io.Discard)
			require.ErrorIs(t, err, errUsage)
		})
	}
}

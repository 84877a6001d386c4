package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
	return execOn(t, databases{primary: pgtest.ConnString(t)}, args...)
}

// execOn parses args and runs txbench on dbs.
func execOn(t *testing.T, dbs databases, args ...string) string {
	t.Helper()
	c, err := parseFlags(args, io.Discard)
	require.NoError(t, err)
	var stdout bytes.Buffer
	require.NoError(t, execute(t.Context(), c, dbs, args, &stdout, io.Discard))
	return stdout.String()
}

// withStandby returns a private database and a streaming hot standby of it, stopped at cleanup, as run starts
// them for the replica implementations. It skips t on a DATABASE_URL server.
func withStandby(t *testing.T) databases {
	t.Helper()
	dbs := databases{primary: pgtest.ConnString(t)}
	cluster, err := pgtest.Shared()
	require.NoError(t, err)
	standby, err := startStandby(t.Context(), cluster)
	if errors.Is(err, pgtest.ErrExternal) {
		t.Fatal(err, ": a standby needs the embedded cluster (unset DATABASE_URL)")
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, standby.Stop()) })
	dbs.standby = standby.ConnString(databaseName(dbs.primary))
	return dbs
}

// readheavy with and without the standby: every cell keeps read-your-writes, and the replica implementation's
// reads ran on the standby.
func TestReadHeavyRunsOnPrimaryAndStandby(t *testing.T) {
	out := execOn(t, withStandby(t), "-workloads", "readheavy", "-impls", "pgxact,pgxact-replica", "-workers", "1,4",
		"-duration", "200ms", "-rounds", "2")
	require.NotContains(t, out, "VIOLATED")
	for _, workers := range []string{"1", "4"} {
		counts := regexp.MustCompile(`readheavy/pgxact-replica/` + workers + `: reads (\d+), reads on a standby (\d+)`).
			FindStringSubmatch(out)
		require.NotNil(t, counts, "no counts for %s workers in:\n%s", workers, out)
		require.NotEqual(t, "0", counts[2], "no read ran on the standby: %s", counts[0])
		require.Contains(t, out, "readheavy/pgxact/"+workers+": reads ")
	}
	require.Regexp(t, `readheavy/pgxact/1: reads \d+, reads on a standby 0\n`, out)
}

func TestReplicaImplementationsWithoutAStandbyAreAnError(t *testing.T) {
	c, err := parseFlags([]string{"-workloads", "readheavy", "-impls", "pgxact-replica", "-workers", "1"}, io.Discard)
	require.NoError(t, err)
	err = execute(t.Context(), c, databases{primary: pgtest.ConnString(t)}, nil, io.Discard, io.Discard)
	require.ErrorContains(t, err, "need a standby")
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
	t.Run("readheavy and the replica implementations are known but not run by default", func(t *testing.T) {
		c, err := parseFlags([]string{"-workloads", "readheavy", "-impls", "pgxact,pgxact-replica"}, io.Discard)
		require.NoError(t, err)
		require.True(t, c.needsReplica())
		c, err = parseFlags(nil, io.Discard)
		require.NoError(t, err)
		require.NotContains(t, c.workloads, "readheavy")
		require.False(t, c.needsReplica())
	})
	t.Run("pgbench adds the tpcb workload, once", func(t *testing.T) {
		c, err := parseFlags([]string{"-pgbench", "-workloads", "single"}, io.Discard)
		require.NoError(t, err)
		require.Equal(t, []string{"single", "tpcb"}, c.workloads)
		c, err = parseFlags([]string{"-pgbench", "-workloads", "tpcb,reads"}, io.Discard)
		require.NoError(t, err)
		require.Equal(t, []string{"tpcb", "reads"}, c.workloads)
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
		require.Equal(t, 10, c.wl.Scale)
		require.Zero(t, c.rtt)
		require.Equal(t, viaClient, c.rttVia)
		require.False(t, c.pgbench)
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
		{"two accounts, which cannot show a lost update", []string{"-accounts", "2"}},
		{"a negative duration", []string{"-duration", "-1s"}},
		{"a negative round-trip time", []string{"-rtt", "-1ms"}},
		{"an unknown way to delay", []string{"-rtt", "1ms", "-rtt-via", "netem"}},
		{"a scale of zero", []string{"-scale", "0"}},
		{"stray arguments", []string{"extra"}},
		{"slices under a millisecond", []string{"-duration", "3ms", "-rounds", "4"}},
		{"readheavy with an implementation that runs another transaction", []string{"-workloads", "readheavy",
			"-impls", "pgxact,pgx"}},
	}
	for _, b := range bad {
		t.Run("rejects "+b.name, func(t *testing.T) {
			_, err := parseFlags(b.args, io.Discard)
			require.ErrorIs(t, err, errUsage)
		})
	}
}

func TestCPUProfileIsWrittenOverTheMeasuredCells(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	execArgs(t, "-cpuprofile", path, "-workloads", "single", "-impls", "pgxact", "-workers", "1", "-duration", "60ms",
		"-rounds", "1")
	prof, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(prof, []byte{0x1f, 0x8b}), "a pprof profile is gzip-compressed")

	_, err = startCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.prof"))
	require.ErrorContains(t, err, "cpu profile")
}

// An unusable -out fails the run before any server is asked for (DATABASE_URL names one pgtest refuses without
// connecting, so reaching it would show in the message), rather than after a sweep of minutes.
func TestUnusableOutFailsBeforeTheServerStarts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, c := range []struct {
		name, out string
	}{
		{"a regular file", file},
		{"a directory inside a regular file", filepath.Join(file, "report")},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", "postgres://192.0.2.1/txbench")
			var stderr bytes.Buffer
			code := run(t.Context(), []string{"-out", c.out, "-quick"}, io.Discard, &stderr)
			require.Equal(t, 1, code, "as for an unusable -cpuprofile")
			require.Contains(t, stderr.String(), "txbench: -out "+c.out+": ")
			require.NotContains(t, stderr.String(), "PostgreSQL", "no server was asked for")
		})
	}
}

func TestPrepareOutMakesTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	made, err := prepareOut(dir)
	require.NoError(t, err)
	require.Equal(t, []string{dir, filepath.Dir(dir)}, made, "deepest first")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "the probe file is removed")
	made, err = prepareOut(dir)
	require.NoError(t, err)
	require.Empty(t, made, "it was there already")
	made, err = prepareOut("")
	require.NoError(t, err, "no -out, nothing to check")
	require.Empty(t, made)
}

// A run that fails before writing its report leaves no empty -out directory of its making behind, parents included,
// and never removes one that was there before.
func TestAFailedRunRemovesTheOutDirectoriesItMade(t *testing.T) {
	for _, existed := range []bool{false, true} {
		t.Run(fmt.Sprintf("existed %v", existed), func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "results", "out")
			if existed {
				require.NoError(t, os.MkdirAll(dir, 0o755))
			}
			code := run(t.Context(), []string{"-out", dir, "-quick", "-workers", "100000"}, io.Discard, io.Discard)
			require.Equal(t, 2, code, "refused by the preflight")
			_, err := os.Stat(dir)
			require.Equal(t, existed, err == nil, "%v", err)
			_, err = os.Stat(filepath.Join(base, "results"))
			require.Equal(t, existed, err == nil, "the parent: %v", err)
			_, err = os.Stat(base)
			require.NoError(t, err, "what was there stays")
		})
	}
}

// TestPreflightRefusesWhatWouldFailLate: more workers than the server takes connections are refused before the
// sweep, not when it reaches that cell.
func TestPreflightRefusesWhatWouldFailLate(t *testing.T) {
	c, err := parseFlags([]string{"-workloads", "single", "-impls", "pgx", "-workers", "1,4,5000"}, io.Discard)
	require.NoError(t, err)
	err = preflight(t.Context(), c, pgtest.ConnString(t))
	require.ErrorIs(t, err, errUsage)
	require.ErrorContains(t, err, "5000 workers")

	c, err = parseFlags([]string{"-pgbench", "-impls", "pgx", "-workers", "1,16"}, io.Discard)
	require.NoError(t, err)
	require.NoError(t, preflight(t.Context(), c, pgtest.ConnString(t)), "pgbench is installed with the server")
}

// The table and the report give the host's speed before and after the cells, measured: a fixed amount of hashing
// takes some milliseconds, not nothing, and a loopback round trip some microseconds.
func TestHostSpeedIsReadBeforeAndAfterTheCells(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	table := execArgs(t, "-out", dir, "-workloads", "single", "-impls", "pgxact", "-workers", "1",
		"-duration", "60ms", "-rounds", "1")
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	re := regexp.MustCompile(`host speed \(4 MiB of SHA-256 on one goroutine, and an empty query's round trip on a ` +
		`direct connection; medians\): ([0-9.]+) ms and ([0-9.]+) ms before, ([0-9.]+) ms and ([0-9.]+) ms after`)
	for name, out := range map[string]string{"table": table, "report": string(md)} {
		m := re.FindStringSubmatch(out)
		require.NotNil(t, m, "%s: %s", name, out)
		for i, field := range m[1:] {
			v, err := strconv.ParseFloat(field, 64)
			require.NoError(t, err)
			if i%2 == 0 { // hashing 4 MiB: well over 0.1 ms on any CPU, well under 10 s
				require.True(t, v > 0.1 && v < 10_000, "%s: hashing took %v ms", name, v)
			} else { // a loopback round trip: above zero, under a second
				require.True(t, v > 0 && v < 1000, "%s: round trip %v ms", name, v)
			}
		}
	}
	require.Regexp(t, `- Machine: .*load average .* after; host speed`, string(md), "on the Machine line")
}

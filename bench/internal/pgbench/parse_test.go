package pgbench_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/bench/internal/pgbench"
)

// pg15Output is what pgbench 15 prints for a tpcb-like run.
const pg15Output = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 1
query mode: prepared
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 5331
number of failed transactions: 3 (0.056%)
latency average = 5.987 ms
initial connection time = 19.511 ms
tps = 2672.410933 (without initial connection time)
`

// pg13Output is what pgbench 13 prints: no failures line, and two tps lines.
const pg13Output = `transaction type: <builtin: TPC-B (sort of)>
scaling factor: 1
query mode: prepared
number of clients: 1
number of threads: 1
duration: 1 s
number of transactions actually processed: 812
latency average = 1.231 ms
tps = 811.250000 (including connections establishing)
tps = 813.004127 (excluding connections establishing)
`

func TestParse(t *testing.T) {
	t.Run("reads PostgreSQL 15's summary", func(t *testing.T) {
		r, err := pgbench.Parse(pg15Output)
		require.NoError(t, err)
		require.Equal(t, int64(5331), r.Transactions)
		require.Equal(t, int64(3), r.Failed)
		require.InDelta(t, 2672.410933, r.TPS, 1e-6)
		require.Equal(t, 5987*time.Microsecond, r.LatencyAvg)
	})
	t.Run("takes the tps without connections from PostgreSQL 13's two", func(t *testing.T) {
		r, err := pgbench.Parse(pg13Output)
		require.NoError(t, err)
		require.Equal(t, int64(812), r.Transactions)
		require.Zero(t, r.Failed)
		require.InDelta(t, 813.004127, r.TPS, 1e-6)
	})
	t.Run("rejects output without a tps", func(t *testing.T) {
		_, err := pgbench.Parse("number of transactions actually processed: 5\n")
		require.ErrorContains(t, err, "no tps")
	})
	t.Run("rejects output without a transaction count", func(t *testing.T) {
		_, err := pgbench.Parse("tps = 5.0 (without initial connection time)\n")
		require.Error(t, err)
	})
}

func TestConnInfoQuotesValues(t *testing.T) {
	config := pgtestConfig(t, "postgres://o'brien:pa%5Css@127.0.0.1:5433/db%20x?sslmode=disable")
	require.Equal(t, `host='127.0.0.1' port=5433 user='o\'brien' dbname='db x' sslmode=disable`,
		pgbench.ConnInfo(config))
}

// TestPasswordIsNotOnTheCommandLine: pgbench gets the password in its environment, where other local users cannot
// read it, not in its arguments, which ps shows them.
func TestPasswordIsNotOnTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	fake := filepath.Join(dir, "pgbench")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + seen + "\nprintf 'PGPASSWORD=%s\\n' \"$PGPASSWORD\" >> " + seen + "\n"
	require.NoError(t, os.WriteFile(fake, []byte(script), 0o755))
	config := pgtestConfig(t, "postgres://u:s3cret@127.0.0.1:5433/db?sslmode=disable")
	c := pgbench.Client{Bin: fake, ConnInfo: pgbench.ConnInfo(config), Password: config.Password}
	require.NoError(t, c.Init(context.Background(), 1))
	got, err := os.ReadFile(seen)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	require.Equal(t, "PGPASSWORD=s3cret", lines[len(lines)-1])
	require.NotContains(t, strings.Join(lines[:len(lines)-1], " "), "s3cret", "the password is on the command line")
}

func TestConnInfoKeepsTheTLSChoice(t *testing.T) {
	cases := map[string]string{
		"disable": "sslmode=disable",
		"prefer":  "sslmode=prefer", // pgx falls back to plain TCP; pgbench must be allowed to as well
		"require": "sslmode=require",
	}
	for mode, want := range cases {
		t.Run(mode, func(t *testing.T) {
			config := pgtestConfig(t, "postgres://u@127.0.0.1:5433/db?sslmode="+mode)
			require.Contains(t, pgbench.ConnInfo(config), want)
		})
	}
}

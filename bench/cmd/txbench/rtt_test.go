package main

import (
	"bufio"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// With -rtt every pool and pgbench pay the round trips, whichever way they are delayed: a transaction's latency is at
// least its round trips times the delay (pgx's single: BEGIN, UPDATE, COMMIT; pgbench's builtin script: seven), and
// the pipelined pgbench needs only one. Every cell keeps its invariant, pgbench's included.
func TestRTTDelaysEveryImplementationAndPgbench(t *testing.T) {
	for _, via := range []string{viaClient, viaProxy} {
		t.Run(via, func(t *testing.T) { checkRTTDelays(t, via) })
	}
}

func checkRTTDelays(t *testing.T, via string) {
	t.Helper()
	out := execArgs(t, "-json", "-rtt", "4ms", "-rtt-via", via, "-pgbench", "-workloads", "single", "-impls",
		"pgxact,pgx", "-workers", "1,2", "-duration", "300ms", "-rounds", "1", "-scale", "1")
	p50 := map[string]float64{}
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		var rec struct {
			Workload, Impl string
			Workers        int
			P50Ms          float64 `json:"p50_ms"`
			Commits        int64
			InvariantOK    bool `json:"invariant_ok"`
		}
		require.NoError(t, json.Unmarshal(s.Bytes(), &rec), "line %q", s.Text())
		require.True(t, rec.InvariantOK, "%s/%s/%d", rec.Workload, rec.Impl, rec.Workers)
		require.Positive(t, rec.Commits, "%s/%s/%d", rec.Workload, rec.Impl, rec.Workers)
		if rec.Workers == 1 {
			p50[rec.Workload+"/"+rec.Impl] = rec.P50Ms
		}
	}
	require.Len(t, p50, 6, "single and tpcb for pgxact and pgx, and the two pgbench runs: %v", p50)
	require.GreaterOrEqual(t, p50["single/pgx"], 3*4.0)
	require.GreaterOrEqual(t, p50["single/pgxact"], 2*4.0)
	require.GreaterOrEqual(t, p50["tpcb/pgbench"], 7*4.0)
	require.GreaterOrEqual(t, p50["tpcb/pgbench-pipeline"], 4.0)
	require.Less(t, p50["tpcb/pgbench-pipeline"], 3*4.0, "the pipeline took several round trips")
}

func TestTableShowsTheNetworkAndThePgbenchRatios(t *testing.T) {
	out := execArgs(t, "-rtt", "1ms", "-pgbench", "-workloads", "tpcb", "-impls", "pgxact", "-workers", "1",
		"-duration", "100ms", "-rounds", "1", "-scale", "1")
	require.Contains(t, out, "network: over loopback TCP with every client connection's writes held back 1ms "+
		"(netdelay.Conn, no relay; pgbench through a proxy adding the same;")
	// About the delay: timers may fire a little early (by netdelay's early aim) or late on a busy machine, where this
	// test shares the CPUs with other packages' tests; what must show is a delay of about 1ms, not none or several.
	m := regexp.MustCompile(`round trip, median of \d+: ([0-9.]+) ms with the delay`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	median, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	require.True(t, median >= 0.85 && median < 4, "median round trip %v ms with a 1ms delay", median)
	require.Regexp(t, `tpcb/1: pgxact \d+ commits/s = [0-9.]+× pgbench's \d+, [0-9.]+× pgbench-pipeline's \d+`, out)
}

func TestWithAddrPointsTheConnectionStringElsewhere(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"a URL", "postgres://u@127.0.0.1:5432/db?sslmode=disable", "postgres://u@127.0.0.1:6000/db?sslmode=disable"},
		{"a URL naming its host in the query", "postgresql:///db?host=/tmp&port=5432", "postgresql://127.0.0.1:6000/db"},
		{"keywords and values", "host=/tmp dbname=db", "host=/tmp dbname=db host=127.0.0.1 port=6000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := withAddr(c.in, "127.0.0.1:6000")
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestRTTRefusesAUnixSocket(t *testing.T) {
	for _, via := range []string{viaClient, viaProxy} {
		for _, withPgbench := range []bool{false, true} {
			_, err := delayed(t.Context(), databases{primary: "host=/tmp dbname=db"}, time.Millisecond, via, withPgbench)
			require.ErrorContains(t, err, "over TCP", "%s, pgbench %v", via, withPgbench)
		}
	}
}

// TestRTTTakesOneServerWhateverItsSSLMode: sslmode=prefer, pgx's default, adds a fallback to the same server without
// TLS; that is still one server to delay. Several hosts are not.
func TestRTTTakesOneServerWhateverItsSSLMode(t *testing.T) {
	for _, cs := range []string{
		"postgres://u@127.0.0.1:5432/x",
		"postgres://u@127.0.0.1:5432/x?sslmode=prefer",
		"postgres://u@127.0.0.1:5432/x?sslmode=disable",
	} {
		target, err := tcpTarget(t.Context(), cs)
		require.NoError(t, err, cs)
		require.Equal(t, "127.0.0.1:5432", target)
	}
	_, err := tcpTarget(t.Context(), "postgres://u@127.0.0.1:5432,127.0.0.2:5433/x?sslmode=disable")
	require.ErrorContains(t, err, "one server over TCP")
}

// A DATABASE_URL may name its loopback server localhost, as pgtest accepts: the proxies of -rtt forward to its
// loopback address. A name that resolves elsewhere is refused.
func TestRTTResolvesLocalhost(t *testing.T) {
	target, err := tcpTarget(t.Context(), "postgres://u@localhost:5432/x")
	require.NoError(t, err)
	host, _, err := net.SplitHostPort(target)
	require.NoError(t, err)
	require.True(t, net.ParseIP(host).IsLoopback(), target)
	for _, via := range []string{viaProxy, viaClient} {
		r, err := delayed(t.Context(), databases{primary: "postgres://u@localhost:5432/db"}, time.Millisecond, via, true)
		require.NoError(t, err, via)
		r.close()
	}
}

package faultproxy_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/pgtest"
)

func TestQueriesPassThrough(t *testing.T) {
	e := newEnv(t)
	conn := e.viaProxy(t)

	var sum int
	require.NoError(t, conn.QueryRow(ctxFor(t), "select $1::int + $2::int", 40, 2).Scan(&sum))
	require.Equal(t, 42, sum)
	exec(t, conn, "create table t (id int)")
	exec(t, conn, "insert into t select generate_series(1, 1000)")
	require.Equal(t, 1000, count(t, e.direct(t), "select count(*) from t"))

	s := e.proxy.Stats()
	require.Equal(t, uint64(1), s.Conns)
	require.Zero(t, s.Cuts)
	require.NotZero(t, s.Writes)
	require.NotZero(t, s.Messages)
}

func TestLargeMessagesPassThrough(t *testing.T) {
	e := newEnv(t)
	conn := e.viaProxy(t)
	big := make([]byte, 1<<20) // spans many reads, so the parser must reassemble it
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}

	var n int
	require.NoError(t, conn.QueryRow(ctxFor(t), "select length($1::text)", string(big)).Scan(&n))
	require.Equal(t, len(big), n)
}

func TestCutCommit(t *testing.T) {
	tests := []struct {
		name      string
		action    faultproxy.Action
		committed bool
	}{
		{name: "CutBefore leaves the transaction uncommitted", action: faultproxy.CutBefore, committed: false},
		{name: "CutAfter lets the server commit", action: faultproxy.CutAfter, committed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			direct := e.direct(t)
			tx := insertThroughProxy(t, e, direct)

			e.proxy.SetRule(onCommit(tt.action))
			requireCutError(t, tx.Commit(ctxFor(t)))
			require.Equal(t, uint64(1), e.proxy.Stats().Cuts)
			waitOtherSessionsGone(t, direct)
			want := 0
			if tt.committed {
				want = 1
			}
			require.Equal(t, want, count(t, direct, "select count(*) from t"))
		})
	}
}

// TestStrandLeavesTheServerSessionInItsTransaction: after a Strand at COMMIT the client has its error at once, while
// the server's session stays idle in its transaction, holding it, until the proxy lets go.
func TestStrandLeavesTheServerSessionInItsTransaction(t *testing.T) {
	e := newEnv(t)
	direct := e.direct(t)
	tx := insertThroughProxy(t, e, direct)

	e.proxy.SetRule(onCommit(faultproxy.Strand))
	requireCutError(t, tx.Commit(ctxFor(t)))
	require.Equal(t, uint64(1), e.proxy.Stats().Cuts)
	const stranded = `select count(*) from pg_stat_activity where datname = current_database()
		and state = 'idle in transaction' and pid <> pg_backend_pid()`
	for range 15 { // for 300ms
		require.Equal(t, 1, count(t, direct, stranded), "the stranded session keeps its transaction open")
		time.Sleep(20 * time.Millisecond)
	}

	closeWithin(t, e.proxy, 5*time.Second)
	waitOtherSessionsGone(t, direct)
	require.Zero(t, count(t, direct, "select count(*) from t"), "the stranded transaction never committed")
}

func TestCutInsideAPipelinedBatch(t *testing.T) {
	const insert = "insert into t values ($1)"
	tests := []struct {
		name   string
		action faultproxy.Action
		nth    int64 // which Bind of the insert to cut at
		rows   []int // the row counts the cut may leave
	}{
		// CutAfter forwards everything read so far, which is the whole batch when pgx's single write arrived in one
		// read: then the Sync commits all three rows. Under load the kernel may deliver the write in pieces, and the
		// Sync stays behind: nothing commits. Either way the implicit transaction is all or nothing (CI saw 0 once).
		{name: "CutAfter the first insert commits the whole batch or nothing, never part of it",
			action: faultproxy.CutAfter, nth: 1, rows: []int{0, 3}},
		{name: "CutBefore the last insert withholds the batch's Sync, so nothing commits",
			action: faultproxy.CutBefore, nth: 3, rows: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			direct := e.direct(t)
			exec(t, direct, "create table t (id int)")
			conn := e.viaProxy(t)
			var binds atomic.Int64
			e.proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
				if m.Type == 'B' && m.SQL == insert && binds.Add(1) == tt.nth {
					return tt.action
				}
				return faultproxy.Forward
			})

			// pgx sends the batch's Bind/Execute messages and its one Sync in a single write.
			b := &pgx.Batch{}
			for i := range 3 {
				b.Queue(insert, i)
			}
			requireCutError(t, conn.SendBatch(ctxFor(t), b).Close())

			waitOtherSessionsGone(t, direct)
			require.Contains(t, tt.rows, count(t, direct, "select count(*) from t"))
		})
	}
}

// requireCutError checks that err comes from the network, not the server or the test's deadline.
func requireCutError(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "client hung instead of seeing the cut")
	var pgErr *pgconn.PgError
	require.NotErrorAs(t, err, &pgErr, "the server answered")
}

func TestRuleSeesBindSQL(t *testing.T) {
	const query = "select $1::int * 2"
	tests := []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{name: "named statement from the statement cache", mode: pgx.QueryExecModeCacheStatement},
		{name: "named statement from the description cache", mode: pgx.QueryExecModeCacheDescribe},
		{name: "unnamed statement described each time", mode: pgx.QueryExecModeDescribeExec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			conn := e.viaProxy(t)
			var r recorder
			e.proxy.SetRule(r.rule)

			for i := range 2 {
				var got int
				require.NoError(t, conn.QueryRow(ctxFor(t), query, tt.mode, i).Scan(&got))
				require.Equal(t, 2*i, got)
			}

			binds := 0
			for _, m := range r.messages() {
				if m.Type == 'B' {
					binds++
					require.Equal(t, query, m.SQL)
				}
			}
			require.Equal(t, 2, binds)
		})
	}
}

func TestStatementCacheSendsOnlyBindTheSecondTime(t *testing.T) {
	const query = "select $1::int + 1"
	e := newEnv(t)
	conn := e.viaProxy(t)
	var r recorder
	e.proxy.SetRule(r.rule)

	for i := range 2 {
		var got int
		require.NoError(t, conn.QueryRow(ctxFor(t), query, i).Scan(&got))
	}

	var types []byte
	for _, m := range r.messages() {
		if m.SQL == query {
			types = append(types, m.Type)
		}
	}
	require.Equal(t, []byte{'P', 'B', 'B'}, types, "one Parse, then a Bind per execution")
}

func TestEveryConnectionIsNumbered(t *testing.T) {
	e := newEnv(t)
	var r recorder
	e.proxy.SetRule(r.rule)
	first, second := e.viaProxy(t), e.viaProxy(t)

	exec(t, first, "select 1")
	exec(t, second, "select 2")

	conns := map[string]uint64{}
	for _, m := range r.messages() {
		if m.Type == 'Q' {
			conns[m.SQL] = m.Conn
		}
	}
	require.Equal(t, map[string]uint64{"select 1": 1, "select 2": 2}, conns)
	require.Equal(t, uint64(2), e.proxy.Stats().Conns)
}

func TestRandomCutsAlwaysEndInAnError(t *testing.T) {
	e := newEnv(t)
	exec(t, e.direct(t), "create table t (id int)")
	e.proxy.SetRule(faultproxy.RandomCuts(0.2, 7))

	failures := 0
	for i := range 30 {
		if err := insertInTx(t, e, i); err != nil {
			requireCutError(t, err)
			failures++
		}
	}
	require.NotZero(t, failures)
	require.NotZero(t, e.proxy.Stats().Cuts)
}

// insertInTx connects through the proxy and inserts i in a transaction, returning the first error.
func insertInTx(t *testing.T, e env, i int) error {
	config, err := pgx.ParseConfig(e.connString)
	require.NoError(t, err)
	e.proxy.Route(&config.Config)
	ctx := ctxFor(t)
	conn, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "insert into t values ($1)", i)
		return err
	})
}

func TestCloseEndsOpenConnections(t *testing.T) {
	connString := pgtest.ConnString(t) // starts the shared server's goroutines before counting
	before := runtime.NumGoroutine()
	e := proxyFor(t, connString)
	conn := e.viaProxy(t)
	exec(t, conn, "select 1")

	closeWithin(t, e.proxy, 5*time.Second)

	_, err := conn.Exec(ctxFor(t), "select 1")
	requireCutError(t, err)
	requireGoroutinesAtMost(t, before)
	require.NoError(t, e.proxy.Close(), "a second Close is harmless")
}

func TestStartRefusesNonLoopbackTargets(t *testing.T) {
	for _, target := range []string{"10.0.0.1:5432", "localhost:5432", "example.com:5432", "127.0.0.1", ""} {
		t.Run(target, func(t *testing.T) {
			_, err := faultproxy.Start(target)
			require.ErrorIs(t, err, faultproxy.ErrNotLoopback)
		})
	}
}

func TestStartAcceptsLoopbackTargets(t *testing.T) {
	for _, target := range []string{"127.0.0.1:5432", "127.1.2.3:1", "[::1]:5432"} {
		t.Run(target, func(t *testing.T) {
			p, err := faultproxy.Start(target)
			require.NoError(t, err)
			require.Equal(t, "127.0.0.1", p.Addr()[:len("127.0.0.1")])
			require.NotZero(t, p.Port())
			require.NoError(t, p.Close())
		})
	}
}

// Route sends every connection attempt of a configuration through the proxy: with the default sslmode=prefer pgx
// adds a fallback that keeps the server's port, which would reach the server around it.
func TestRouteLeavesNoWayAround(t *testing.T) {
	p, err := faultproxy.Start("127.0.0.1:1")
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	config, err := pgconn.ParseConfig("postgres://u@localhost:5432/db")
	require.NoError(t, err)
	require.NotEmpty(t, config.Fallbacks, "sslmode=prefer: a fallback without TLS")
	p.Route(config)
	require.Equal(t, "127.0.0.1", config.Host)
	require.Equal(t, uint16(p.Port()), config.Port)
	require.Empty(t, config.Fallbacks)
	require.Nil(t, config.TLSConfig)
}

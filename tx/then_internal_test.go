package tx

import (
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// TestConcurrentExtensionsOfOneChain: goroutines extending one long chain at both ends at once each get their own
// statements, whichever of them wins the room; -race checks that none writes where another reads.
func TestConcurrentExtensionsOfOneChain(t *testing.T) {
	base := Exec("SELECT 0")
	for i := 1; i < 40; i++ {
		base = Then(base, Exec("SELECT "+strconv.Itoa(i)))
	}
	sqls := func(st []stmt) []string {
		out := make([]string, len(st))
		for i := range st {
			out[i] = st[i].sql
		}
		return out
	}
	want := sqls(base.s.stmts)
	const workers = 8
	ends, fronts := make([]Tx[pgconn.CommandTag], workers), make([]Tx[pgconn.CommandTag], workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ends[w] = Then(base, Exec("SELECT 'end "+strconv.Itoa(w)+"'"))
			fronts[w] = Then(Exec("SELECT 'front "+strconv.Itoa(w)+"'"), base)
		}()
	}
	wg.Wait()
	for w := range workers {
		require.Equal(t, append(append([]string{}, want...), "SELECT 'end "+strconv.Itoa(w)+"'"),
			sqls(ends[w].s.stmts))
		require.Equal(t, append([]string{"SELECT 'front " + strconv.Itoa(w) + "'"}, want...), sqls(fronts[w].s.stmts))
	}
	require.Equal(t, want, sqls(base.s.stmts), "the base is untouched")
	shared := func(ts []Tx[pgconn.CommandTag]) (n int) {
		for _, x := range ts {
			if x.s.room.g == base.s.room.g {
				n++
			}
		}
		return n
	}
	require.NotNil(t, base.s.room.g)
	require.Equal(t, 1, shared(ends), "one extension at the end took the room there; the others copied")
	require.Equal(t, 1, shared(fronts), "one extension at the front took the room there; the others copied")
}

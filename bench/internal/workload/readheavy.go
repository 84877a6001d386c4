package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/tx"
)

const (
	readHeavyRows = 10_000
	// readHeavyWrites is the share of transactions that write, in percent.
	readHeavyWrites = 10

	rhSelect  = "SELECT v FROM bench_rh_items WHERE id = $1"
	rhCounter = "SELECT coalesce((SELECT n FROM bench_rh_sessions WHERE id = $1), 0), pg_is_in_recovery()"
	rhHit     = "UPDATE bench_rh_items SET hits = hits + 1 WHERE id = $1"
	rhBump    = "INSERT INTO bench_rh_sessions AS s (id, n) VALUES ($1, 1) " +
		"ON CONFLICT (id) DO UPDATE SET n = s.n + 1 RETURNING n"
)

// Keys of ReadHeavy's Counts.
const (
	CountReads        = "reads"
	CountStandbyReads = "reads on a standby"
)

// readOnly are the options of a read a standby can serve: PostgreSQL refuses SERIALIZABLE there.
var readOnly = []tx.Option{tx.ReadOnly(), tx.WithIsolation(pgx.RepeatableRead)}

// readHeavy is shared by all workers; its counters are per slice.
type readHeavy struct {
	k       int
	flows   atomic.Int64 // the last flow id handed out; ids are never reused, so Reset needs no coordination
	writes  atomic.Int64 // writes committed through flows since Reset
	reads   atomic.Int64 // reads committed through flows since Reset
	standby atomic.Int64 // of which on a standby
}

// ReadHeavy returns the read-mostly workload with read-your-writes checks. Run through flows (NewFlow), nine
// transactions in ten are read-only REPEATABLE READ transactions that read k rows of a 10,000-row table and the
// worker's own counter; one in ten is a read-write transaction that bumps a row's hits and the worker's counter,
// committed with synchronous_commit = on so that standbys receive it at once, as they would from a production primary.
// A read that sees the worker's counter lower than the worker's last committed write is a read-your-writes
// violation (ErrInvariant), and so is a wrong row value. Check compares the counters with the writes committed.
//
// Tx and Body, for runners without flows, are the same mix without the counter: reads of k rows (checked) and
// writes of one row's hits.
func ReadHeavy(k int) Flowing { return &readHeavy{k: k} }

func (*readHeavy) Name() string { return "readheavy" }

func (*readHeavy) Setup(ctx context.Context, db *pgxpool.Pool) error {
	return execAll(ctx, db,
		"DROP TABLE IF EXISTS bench_rh_items, bench_rh_sessions",
		"CREATE TABLE bench_rh_items (id bigint PRIMARY KEY, v bigint NOT NULL, hits bigint NOT NULL DEFAULT 0)",
		"INSERT INTO bench_rh_items (id, v) SELECT g, g * 7 + 3 FROM generate_series(1, 10000) AS g",
		"CREATE TABLE bench_rh_sessions (id bigint PRIMARY KEY, n bigint NOT NULL)",
		"ANALYZE bench_rh_items",
	)
}

func (w *readHeavy) Reset(ctx context.Context, db *pgxpool.Pool) error {
	w.writes.Store(0)
	w.reads.Store(0)
	w.standby.Store(0)
	return execAll(ctx, db, "DELETE FROM bench_rh_sessions", "UPDATE bench_rh_items SET hits = 0 WHERE hits <> 0")
}

// Check compares the workers' counters with the writes their flows saw commit.
func (w *readHeavy) Check(ctx context.Context, db *pgxpool.Pool, _ int64) error {
	return checkCount(ctx, db, "SELECT coalesce(sum(n), 0)::bigint FROM bench_rh_sessions", w.writes.Load())
}

func (w *readHeavy) Counts() map[string]int64 {
	return map[string]int64{CountReads: w.reads.Load(), CountStandbyReads: w.standby.Load()}
}

func (w *readHeavy) ids(r *rand.Rand) []int64 {
	ids := make([]int64, w.k)
	for i := range ids {
		ids[i] = 1 + r.Int64N(readHeavyRows)
	}
	return ids
}

// readRows reads ids and checks every value.
func readRows(ids []int64) tx.Tx[struct{}] {
	ts := make([]tx.Tx[int64], len(ids))
	for i, id := range ids {
		ts[i] = tx.QueryOne(rhSelect, pgx.RowTo[int64], id)
	}
	return tx.Bind(tx.All(ts), func(vs []int64) tx.Tx[struct{}] {
		for i, v := range vs {
			if err := checkRead(ids[i], v); err != nil {
				return tx.Fail[struct{}](err)
			}
		}
		return tx.Pure(struct{}{})
	})
}

func (w *readHeavy) Tx(r *rand.Rand) tx.Tx[struct{}] {
	if r.IntN(100) < readHeavyWrites {
		return discard(tx.Exec(rhHit, 1+r.Int64N(readHeavyRows)))
	}
	return readRows(w.ids(r))
}

func (w *readHeavy) Body(r *rand.Rand) Body {
	if r.IntN(100) < readHeavyWrites {
		id := 1 + r.Int64N(readHeavyRows)
		return func(ctx context.Context, q Querier) error {
			_, err := q.Exec(ctx, rhHit, id)
			return err
		}
	}
	ids := w.ids(r)
	return func(ctx context.Context, q Querier) error {
		for _, id := range ids {
			var v int64
			if err := q.QueryRow(ctx, rhSelect, id).Scan(&v); err != nil {
				return err
			}
			if err := checkRead(id, v); err != nil {
				return err
			}
		}
		return nil
	}
}

func (w *readHeavy) NewFlow() Flow { return &readHeavyFlow{w: w, id: w.flows.Add(1)} }

// readHeavyFlow is one worker: it owns the counter row id.
type readHeavyFlow struct {
	w    *readHeavy
	id   int64
	last int64 // the counter's value after this worker's last committed write; every later read must see as much
}

// sighting is a value read, and for the worker's counter, whether it was read on a standby.
type sighting struct {
	N         int64
	OnStandby bool
}

func (f *readHeavyFlow) Next(r *rand.Rand) Step {
	if r.IntN(100) < readHeavyWrites {
		return f.write(1 + r.Int64N(readHeavyRows))
	}
	return f.read(f.w.ids(r))
}

// write bumps a row's hits and the worker's counter. synchronous_commit = on makes COMMIT wait for the WAL flush,
// after which the walsender streams it at once; pgtest's server runs with it off, which would hold commits back
// from standbys for up to wal_writer_delay (200 ms) and send nearly every session read to the primary.
func (f *readHeavyFlow) write(item int64) Step {
	var n int64
	t := tx.Then(tx.SetLocal("synchronous_commit", "on"),
		tx.Then(tx.Exec(rhHit, item), tx.QueryOne(rhBump, pgx.RowTo[int64], f.id)))
	return Step{
		Tx: tx.Map(t, func(v int64) struct{} { n = v; return struct{}{} }),
		Committed: func() {
			f.last = n
			f.w.writes.Add(1)
		},
	}
}

// read reads ids and the worker's counter, in one round trip, and checks them all.
func (f *readHeavyFlow) read(ids []int64) Step {
	last := f.last
	ts := make([]tx.Tx[sighting], 0, len(ids)+1)
	for _, id := range ids {
		ts = append(ts, tx.Map(tx.QueryOne(rhSelect, pgx.RowTo[int64], id), func(v int64) sighting { return sighting{N: v} }))
	}
	ts = append(ts, tx.QueryOne(rhCounter, pgx.RowToStructByPos[sighting], f.id))
	var onStandby bool
	t := tx.Bind(tx.All(ts), func(seen []sighting) tx.Tx[struct{}] {
		for i, id := range ids {
			if err := checkRead(id, seen[i].N); err != nil {
				return tx.Fail[struct{}](err)
			}
		}
		counter := seen[len(ids)]
		onStandby = counter.OnStandby
		if counter.N < last {
			// The variable part comes last: the harness names error kinds by the message's first 60 characters.
			return tx.Fail[struct{}](fmt.Errorf("%w: stale read, a worker missed its own write: worker %d read its "+
				"counter as %d after committing %d (on a standby: %t)", ErrInvariant, f.id, counter.N, last, counter.OnStandby))
		}
		return tx.Pure(struct{}{})
	})
	return Step{Tx: t, Options: readOnly, Committed: func() {
		f.w.reads.Add(1)
		if onStandby {
			f.w.standby.Add(1)
		}
	}}
}

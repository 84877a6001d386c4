package workload

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/bench/internal/pgbench"
	"github.com/pgxact/pgxact/tx"
)

// The statements of pgbench's tpcb-like script, with pgx's placeholders.
const (
	tpcbAccount = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"
	tpcbBalance = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
	tpcbTeller  = "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2"
	tpcbBranch  = "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2"
	tpcbHistory = "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)"
)

type tpcb struct{ scale int64 }

// TPCB returns pgbench's TPC-B-like transaction on the tables pgbench -i -s scale makes: add a random delta to a
// random account, read the account's balance back, add the delta to a random teller and a random branch, and record
// it in the history. Like pgbench it runs at READ COMMITTED (it is Isolated), where it is safe: every write is an
// increment. Its invariant is that the history holds one row per commit and that its deltas add up to the change of
// the accounts', the tellers' and the branches' balances alike.
func TPCB(scale int) Workload { return tpcb{scale: int64(max(scale, 1))} }

func (tpcb) Name() string { return "tpcb" }

// Isolation is pgbench's: the server's default, READ COMMITTED.
func (tpcb) Isolation() pgx.TxIsoLevel { return pgx.ReadCommitted }

// Setup runs the real pgbench -i, so that the tables, their fill factor and their indexes are pgbench's.
func (w tpcb) Setup(ctx context.Context, db *pgxpool.Pool) error {
	c, err := pgbench.For(ctx, db)
	if err != nil {
		return err
	}
	return c.Init(ctx, int(w.scale))
}

func (tpcb) Reset(ctx context.Context, db *pgxpool.Pool) error {
	return execAll(ctx, db,
		"UPDATE pgbench_accounts SET abalance = 0 WHERE abalance <> 0",
		"UPDATE pgbench_tellers SET tbalance = 0 WHERE tbalance <> 0",
		"UPDATE pgbench_branches SET bbalance = 0 WHERE bbalance <> 0",
		"TRUNCATE pgbench_history",
	)
}

// Check compares the history with the commits and with the three balances, which Reset set to zero.
func (tpcb) Check(ctx context.Context, db *pgxpool.Pool, commits int64) error {
	var rows, deltas, accounts, tellers, branches int64
	err := db.QueryRow(ctx, "SELECT count(*), coalesce(sum(delta), 0)::bigint, "+
		"(SELECT sum(abalance) FROM pgbench_accounts)::bigint, (SELECT sum(tbalance) FROM pgbench_tellers)::bigint, "+
		"(SELECT sum(bbalance) FROM pgbench_branches)::bigint FROM pgbench_history").
		Scan(&rows, &deltas, &accounts, &tellers, &branches)
	if err != nil {
		return fmt.Errorf("workload: check: %w", err)
	}
	if rows != commits {
		return fmt.Errorf("%w: the history holds %d transactions, the harness counted %d", ErrInvariant, rows, commits)
	}
	if accounts != deltas || tellers != deltas || branches != deltas {
		return fmt.Errorf("%w: the history's deltas add up to %d, but the balances changed by %d (accounts), "+
			"%d (tellers), %d (branches)", ErrInvariant, deltas, accounts, tellers, branches)
	}
	return nil
}

// tpcbParams are one transaction's random values, drawn as pgbench's script draws them.
type tpcbParams struct{ aid, bid, tid, delta int64 }

func (w tpcb) draw(r *rand.Rand) tpcbParams {
	return tpcbParams{
		aid:   1 + r.Int64N(100_000*w.scale),
		bid:   1 + r.Int64N(w.scale),
		tid:   1 + r.Int64N(10*w.scale),
		delta: r.Int64N(10_001) - 5000,
	}
}

// Tx is the five statements combined with Then and All: none depends on another's result, so pgxact sends them
// together with BEGIN, and then COMMIT.
func (w tpcb) Tx(r *rand.Rand) tx.Tx[struct{}] {
	p := w.draw(r)
	balance := tx.Then(tx.Exec(tpcbAccount, p.delta, p.aid), tx.QueryOne(tpcbBalance, pgx.RowTo[int64], p.aid))
	rest := tx.All([]tx.Tx[pgconn.CommandTag]{
		tx.Exec(tpcbTeller, p.delta, p.tid),
		tx.Exec(tpcbBranch, p.delta, p.bid),
		tx.Exec(tpcbHistory, p.tid, p.bid, p.aid, p.delta),
	})
	return discard(tx.Then(balance, rest))
}

// Body sends the statements one by one, as hand-written pgx (and pgbench's builtin script) does.
func (w tpcb) Body(r *rand.Rand) Body {
	p := w.draw(r)
	return func(ctx context.Context, q Querier) error {
		if _, err := q.Exec(ctx, tpcbAccount, p.delta, p.aid); err != nil {
			return err
		}
		var balance int64
		if err := q.QueryRow(ctx, tpcbBalance, p.aid).Scan(&balance); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, tpcbTeller, p.delta, p.tid); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, tpcbBranch, p.delta, p.bid); err != nil {
			return err
		}
		_, err := q.Exec(ctx, tpcbHistory, p.tid, p.bid, p.aid, p.delta)
		return err
	}
}

package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/tx"
)

// ErrInvariant is wrapped by the errors that report a broken invariant: a Check that found the tables inconsistent
// with the commits counted, or a transaction that read a value it should not have.
var ErrInvariant = errors.New("workload: invariant violated")

// Querier is what a Body talks to: a pgx.Tx, or the transaction handle of a transaction manager.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Body is a workload transaction as plain pgx code, run inside a transaction that the caller opened. It may run
// several times (once per attempt), always with the same parameters.
type Body func(ctx context.Context, q Querier) error

// Workload is one kind of transaction with its tables and invariant. Tx and Body draw the transaction's parameters
// from r, and are safe for concurrent use with distinct r. Setup, Reset and Check must not run concurrently with
// transactions.
type Workload interface {
	Name() string
	// Setup drops and recreates the workload's tables and fills them.
	Setup(ctx context.Context, db *pgxpool.Pool) error
	// Reset puts the tables back in the state a slice starts from.
	Reset(ctx context.Context, db *pgxpool.Pool) error
	// Check verifies the invariant after a slice in which commits transactions committed.
	Check(ctx context.Context, db *pgxpool.Pool, commits int64) error
	// Tx draws one transaction as a pgxact Tx.
	Tx(r *rand.Rand) tx.Tx[struct{}]
	// Body draws one transaction as plain pgx code.
	Body(r *rand.Rand) Body
}

// Isolated is implemented by the workloads whose transactions run at an isolation level other than SERIALIZABLE,
// which every implementation then uses for them.
type Isolated interface {
	Isolation() pgx.TxIsoLevel
}

// IsolationOf returns the level w's transactions run at: SERIALIZABLE unless w is Isolated.
func IsolationOf(w Workload) pgx.TxIsoLevel {
	if iw, ok := w.(Isolated); ok {
		return iw.Isolation()
	}
	return pgx.Serializable
}

// Config holds the parameters that workloads take from the command line.
type Config struct {
	Accounts int // transfer: number of accounts (few means hot)
	K        int // reads, chain and readheavy: statements (rows read) per transaction
	Scale    int // tpcb: pgbench's scale factor; 0 means 1
}

// Names lists the workloads New knows, in the order the benchmark runs them by default.
func Names() []string { return []string{"single", "reads", "chain", "transfer"} }

// Optional lists the workloads New knows that the benchmark runs only when asked: readheavy, whose point is the
// replica implementations, which need a standby, and tpcb, which needs the pgbench program.
func Optional() []string { return []string{"readheavy", "tpcb"} }

// New returns the workload called name.
func New(name string, c Config) (Workload, error) {
	// Three accounts at least: with two, every transfer writes both balances, so a lost update keeps the total and
	// the invariant could not catch one.
	if c.K < 1 || c.Accounts < 3 || c.Scale < 0 {
		return nil, fmt.Errorf("workload: need k >= 1, at least 3 accounts and a scale >= 0, got k=%d, accounts=%d, "+
			"scale=%d", c.K, c.Accounts, c.Scale)
	}
	switch name {
	case "single":
		return Single(), nil
	case "reads":
		return Reads(c.K), nil
	case "chain":
		return Chain(c.K), nil
	case "transfer":
		return Transfer(TransferConfig{Accounts: c.Accounts}), nil
	case "readheavy":
		return ReadHeavy(c.K), nil
	case "tpcb":
		return TPCB(c.Scale), nil
	}
	return nil, fmt.Errorf("workload: unknown workload %q (known: %v)", name, append(Names(), Optional()...))
}

// execAll runs setup statements in order.
func execAll(ctx context.Context, db *pgxpool.Pool, stmts ...string) error {
	for _, sql := range stmts {
		if _, err := db.Exec(ctx, sql); err != nil {
			return fmt.Errorf("workload: %s: %w", sql, err)
		}
	}
	return nil
}

// checkCount compares a counter total with the commits the harness saw.
func checkCount(ctx context.Context, db *pgxpool.Pool, sql string, commits int64) error {
	var total int64
	if err := db.QueryRow(ctx, sql).Scan(&total); err != nil {
		return fmt.Errorf("workload: check: %w", err)
	}
	if total != commits {
		return fmt.Errorf("%w: the table counts %d committed updates, the harness %d", ErrInvariant, total, commits)
	}
	return nil
}

// discard turns any Tx into the Tx[struct{}] that Workload.Tx returns.
func discard[T any](t tx.Tx[T]) tx.Tx[struct{}] {
	// Then, not Map: no user function runs on the result, so plain statements stay eligible for tx.FuseCommit.
	return tx.Then(t, tx.Pure(struct{}{}))
}

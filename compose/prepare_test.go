package compose_test

// Tests in this file pin down how batches behave when pgx cannot prepare a statement (tx/session.go, sendFrom).

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/compose"
	"github.com/pgxact/pgxact/tx"
)

// pgx prepares every new statement of a batch before it runs any of them. A statement that cannot be prepared (a
// typo, a missing table) then fails the whole batch before BEGIN runs, and tx reports it against BEGIN (first round
// trip) or against statement 0 (later round trips) instead of the statement at fault.
func TestStatementThatFailsToPrepareIsNamed(t *testing.T) {
	const bad = "INSERT INTO no_such_table VALUES (1)"
	elements := []tx.Tx[pgconn.CommandTag]{insert(1), insert(2), tx.Exec(bad)}
	tests := []struct {
		name string
		work tx.Tx[[]pgconn.CommandTag]
	}{
		{"in the round trip that carries BEGIN", compose.Sequence(elements)},
		{"in a later round trip", tx.Bind(insert(0), func(pgconn.CommandTag) tx.Tx[[]pgconn.CommandTag] {
			return compose.Sequence(elements)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newPool(t)
			_, err := tx.Run(ctxT(t), pool, tt.work)
			var se *tx.StatementError
			require.ErrorAs(t, err, &se, "error: %v", err)
			require.Equal(t, bad, se.SQL, "error: %v", err)
			require.Equal(t, 2, se.Index, "error: %v", err)
			require.Empty(t, ids(t, pool))
		})
	}
}

// tx.Then promises that plain statements in one round trip behave "just as if they had been sent one by one", and
// compose promises that elements see each other's effects. A statement that uses what an earlier one creates
// breaks both: pgx prepares it before the earlier statement has run.
func TestStatementUsingATableCreatedEarlierInTheBatch(t *testing.T) {
	pool := newPool(t)
	got, err := tx.Run(ctxT(t), pool, compose.Sequence([]tx.Tx[pgconn.CommandTag]{
		tx.Exec("CREATE TABLE fresh (id int)"),
		tx.Exec("INSERT INTO fresh VALUES (1), (2)"),
	}))
	require.NoError(t, err)
	require.Equal(t, int64(2), got[1].RowsAffected())
}

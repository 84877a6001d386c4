package tx

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadsOnly(t *testing.T) {
	cases := []struct {
		sql   string
		reads bool
	}{
		{"SELECT balance FROM accounts WHERE id = $1", true},
		{"  select 1", true},
		{"WITH a AS (SELECT 1) SELECT * FROM a", true},
		{"VALUES (1), (2)", true},
		{"TABLE accounts", true},
		{"SHOW search_path", true},
		{"SELECT set_config('app.user', $1, true)", true},
		{"UPDATE accounts SET balance = 0", false},
		{"INSERT INTO t VALUES (1)", false},
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d", false},
		{"SELECT * FROM accounts FOR UPDATE", false},
		{"SELECT * INTO copy FROM accounts", false},
		{"SELECT nextval('s')", false},
		{"select SetVal('s', 1)", false},
		{"-- a comment first\nSELECT 1", false}, // not recognised: looked at, which is safe
		{"CALL p()", false},
		{"", false},
		{"SELECT updated_at FROM t", true}, // words are whole words
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			require.Equal(t, c.reads, readsOnly(c.sql))
		})
	}
}

func TestReadsOnlyDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		readsOnly("WITH a AS (SELECT balance FROM accounts WHERE id = $1) SELECT * FROM a")
	})
	require.Zero(t, allocs)
}

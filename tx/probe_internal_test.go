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

func TestUnseenWrite(t *testing.T) {
	cases := []struct {
		sql    string
		unseen bool
	}{
		{"NOTIFY jobs", true},
		{"notify jobs, 'payload'", true},
		{"SELECT pg_notify('jobs', $1)", true},
		{"SELECT Pg_Notify($1, $2)", true},
		{"SET TRANSACTION READ WRITE", true},
		{"set transaction isolation level serializable, read\n\twrite", true},
		{"SET transaction_read_only = off", true},
		{"SELECT set_config('transaction_read_only', 'off', true)", true},
		{"SELECT notify_email FROM users", true}, // a mention: the look assigns an id, which is safe
		{"SELECT balance FROM accounts WHERE id = $1", false},
		{"SET TRANSACTION READ ONLY", false},
		{"SET TRANSACTION READ/**/WRITE", true},
		{"SET TRANSACTION READ\fWRITE", true},
		{"SET TRANSACTION READ -- c\nWRITE", true},
		{"SELECT count(*) FROM threads", false},
		{"UPDATE accounts SET balance = 0", false},
		{"", false},
		{"notif", false},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			require.Equal(t, c.unseen, unseenWrite(c.sql))
		})
	}
	require.Zero(t, testing.AllocsPerRun(100, func() { unseenWrite("SELECT pg_notify('jobs', $1) -- read write") }))
}

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
		sql  string
		want unseen
	}{
		{"NOTIFY jobs", unseenNotify},
		{"notify jobs, 'payload'", unseenNotify},
		{"SELECT pg_notify('jobs', $1)", unseenNotify},
		{"SELECT Pg_Notify($1, $2)", unseenNotify},
		{"SELECT notify_email FROM users", unseenNotify}, // a mention: the look assigns an id, which is safe
		{"SET TRANSACTION READ WRITE", unseenWritable},
		{"set transaction isolation level serializable, read\n\twrite", unseenWritable},
		{"SET TRANSACTION READ/**/WRITE", unseenWritable},
		{"SET TRANSACTION READ\fWRITE", unseenWritable},
		{"SET TRANSACTION READ -- c\nWRITE", unseenWritable},
		{"SET transaction_read_only = off", unseenWritable},
		{"SELECT set_config('transaction_read_only', 'off', true)", unseenWritable},
		{"SELECT set_config('search_path', $1, true)", unseenSchema},
		{"SELECT set_config('role', $1, true)", unseenSchema},
		{"SELECT set_config('session_authorization', $1, true)", unseenSchema},
		{"SELECT set_config($1, $2, true)", 0},
		{"SELECT set_config('request.jwt.claim.role', $1, true)", 0},
		{"SELECT set_config('app.search_path_hint', $1, true)", 0},
		{"NOTIFY c; SET TRANSACTION READ WRITE", unseenNotify | unseenWritable},
		{"SELECT balance FROM accounts WHERE id = $1", 0},
		{"SET TRANSACTION READ ONLY", 0},
		{"SELECT pg_is_in_recovery() AS thread_writer", 0}, // words, not parts of words
		{"SELECT readwrite FROM t", 0},
		{"SELECT count(*) FROM threads", 0},
		{"UPDATE accounts SET balance = 0", 0},
		{"", 0},
		{"notif", 0},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			require.Equal(t, c.want, unseenWrite(c.sql))
		})
	}
	require.Zero(t, testing.AllocsPerRun(100, func() { unseenWrite("SELECT pg_notify('jobs', $1) -- read write") }))
}

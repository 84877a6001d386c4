package jepsen_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// FuzzSetLocal: SetLocal either refuses a name with ErrInvalid — and then PostgreSQL refuses it too, unless it is
// one of the names tx is documented to be stricter about — or hands name and value to the server as parameters, so
// that the server may refuse them (an unknown parameter, a bad value, bad encoding) but never sees a syntax error.
// A custom (dotted) setting that is accepted reads back exactly.
func FuzzSetLocal(f *testing.F) {
	conn, err := pgx.Connect(context.Background(), pgtest.ConnString(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = conn.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, name, value string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		readBack := tx.Bind(tx.SetLocal(name, value), func(struct{}) tx.Tx[string] {
			return tx.QueryOne("SELECT current_setting($1)", pgx.RowTo[string], name)
		})
		got, err := tx.Run(ctx, conn, readBack, tx.WithPolicy(retry.Never()))
		var pgErr *pgconn.PgError
		switch {
		case errors.Is(err, tx.ErrInvalid):
			if !stricterThanServer(name) {
				require.Error(t, serverSetConfig(ctx, conn, name, value), "tx refused %q, which PostgreSQL accepts", name)
			}
		case errors.As(err, &pgErr):
			require.NotEqual(t, "42601", pgErr.Code, "a syntax error means text reached SQL: %v", err)
		case err != nil:
			t.Fatalf("an error that is neither invalid input nor the server's answer: %v", err)
		case strings.Contains(name, "."):
			require.Equal(t, value, got, "custom setting %q does not read back", name)
		}
	})
}

// stricterThanServer reports names PostgreSQL accepts but tx refuses on purpose: parts with non-ASCII letters,
// and names over 127 bytes.
func stricterThanServer(name string) bool {
	if len(name) > 127 {
		return true
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// serverSetConfig asks the server itself, in a transaction rolled back at once.
func serverSetConfig(ctx context.Context, conn *pgx.Conn, name, value string) error {
	return pgx.BeginFunc(ctx, conn, func(q pgx.Tx) error {
		if _, err := q.Exec(ctx, "SELECT set_config($1, $2, true)", name, value); err != nil {
			return err
		}
		return errors.New("rolled back on purpose: the server accepted the name")
	})
}

// TestSetLocalReadsBackEveryValue is the fuzz target's promise for values spelled out: quotes, semicolons, comment
// markers, unicode, empty and long values travel as parameters and read back exactly.
func TestSetLocalReadsBackEveryValue(t *testing.T) {
	conn, err := pgx.Connect(context.Background(), pgtest.ConnString(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	values := []string{"", "plain", "it's", `"quoted"`, "a; SELECT 1", "-- comment", "/* c */", "$$dollar$$",
		"\\backslash", "ünïcödé ✓", strings.Repeat("x", 10_000), "\t\n"}
	for _, v := range values {
		got, err := tx.Run(testCtx(t, 10*time.Second), conn, tx.Bind(tx.SetLocal("app.value", v), func(struct{}) tx.Tx[string] {
			return tx.QueryOne("SELECT current_setting('app.value')", pgx.RowTo[string])
		}))
		require.NoError(t, err)
		require.Equal(t, v, got)
	}
}

package tx

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

// TestLexerAgreesWithTheServer runs texts the lexer finds hard in an open transaction, over the simple protocol as
// pgx sends a text without arguments, and asks the server whether the transaction ended: mayEnd must say what the
// server did, and severalStatements how many results it sent.
func TestLexerAgreesWithTheServer(t *testing.T) {
	texts := []string{
		"SELECT 1",
		"SELECT 1; COMMIT; BEGIN",
		"CREATE OR REPLACE FUNCTION f1(p pair) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (p).case; END; COMMIT; BEGIN",
		"CREATE OR REPLACE FUNCTION f2(p pair) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT $1.case; END; END; BEGIN",
		"CREATE OR REPLACE FUNCTION f3(a pair[]) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT a[1].case; END; COMMIT; BEGIN",
		"CREATE OR REPLACE FUNCTION f4() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 case; END; COMMIT; BEGIN",
		"CREATE OR REPLACE FUNCTION f5(p pair) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (p).end; END",
		"CREATE OR REPLACE FUNCTION f6(p pair) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT $1.end; SELECT 1 end; END",
		"CREATE OR REPLACE FUNCTION f7() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 ELSE 2. END; END; COMMIT; BEGIN",
		"CREATE OR REPLACE FUNCTION f8(begin int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT begin atomic; END; END; BEGIN",
		"CREATE OR REPLACE FUNCTION f9(begin int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT begin atomic; END",
		"CREATE OR REPLACE FUNCTION f10(p pair) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (p).case + CASE WHEN true THEN 1 END; END; SELECT 1",
		"SELECT E'a'\n'\\''; COMMIT; BEGIN",
		"SELECT E'a' -- c\n  '\\''; COMMIT; BEGIN",
		"SELECT E'a'\n'\\'; COMMIT; --'; SELECT 1",
		"SELECT 'a'\n'b'; SELECT 1",
		"PREPARE transaction AS SELECT 1; EXECUTE transaction; DEALLOCATE transaction",
		`PREPARE transaction ("int4") AS SELECT $1; EXECUTE transaction(1); DEALLOCATE transaction`,
		// pgtest's server allows prepared transactions; each is rolled back after its text (preparedGIDs).
		"SELECT 1; PREPARE TRANSACTION E'lexer_g1'; BEGIN",
		"PREPARE TRANSACTION U&'lexer_g2'; BEGIN",
	}
	preparedGIDs := []string{"lexer_g1", "lexer_g2"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgx.ParseConfig(pgtest.ConnString(t))
	require.NoError(t, err)
	if pgtest.Pooled() { // transactions ended and begun inside a text need the server's own session
		cluster, err := pgtest.Shared()
		require.NoError(t, err)
		cfg, err = pgx.ParseConfig(cluster.ConnString(cfg.Database))
		require.NoError(t, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `CREATE TYPE pair AS ("case" int, "end" int)`)
	require.NoError(t, err)
	var prepared int
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting('max_prepared_transactions')::int").Scan(&prepared))
	if prepared == 0 { // a DATABASE_URL server may not allow them; pgtest's own does
		t.Logf("max_prepared_transactions = 0 on this server: the %d PREPARE TRANSACTION texts are left out", len(preparedGIDs))
		texts = texts[:len(texts)-len(preparedGIDs)]
	}

	for _, sql := range texts {
		t.Run(sql, func(t *testing.T) {
			var xid, after *int64
			defer func() { // on failure too, for the texts after it
				_, _ = conn.Exec(ctx, "ROLLBACK")
				for _, gid := range preparedGIDs { // the test's own constants: ROLLBACK PREPARED takes no parameter
					_, _ = conn.Exec(ctx, "ROLLBACK PREPARED '"+gid+"'")
				}
			}()
			_, err := conn.Exec(ctx, "BEGIN")
			require.NoError(t, err)
			require.NoError(t, conn.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&xid))
			results, err := conn.PgConn().Exec(ctx, sql).ReadAll()
			require.NoError(t, err)
			status := conn.PgConn().TxStatus()
			if status != 'I' {
				require.NoError(t, conn.QueryRow(ctx, "SELECT pg_current_xact_id_if_assigned()::text::bigint").Scan(&after))
			}
			ended := status == 'I' || after == nil || *after != *xid
			require.Equal(t, ended, mayEnd(sql), "the server ended the transaction: %v", ended)
			require.Equal(t, len(results) > 1, severalStatements(sql), fmt.Sprintf("%d results", len(results)))
		})
	}
}

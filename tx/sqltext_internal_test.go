package tx

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSavepointRollback(t *testing.T) {
	cases := map[string]bool{
		"ROLLBACK TO a":                       true,
		"rollback transaction to savepoint a": true,
		"ROLLBACK WORK TO a":                  true,
		"/* to */ ROLLBACK TO x":              true,
		`ROLLBACK TO "to"`:                    true,
		"ROLLBACK TO x;":                      true,
		"ROLLBACK TO x; -- done":              true,
		"SELECT 1; ROLLBACK TO x":             true,
		"ROLLBACK":                            false,
		"ABORT":                               false,
		"ROLLBACK -- back to how it was":      false,
		"ROLLBACK AND CHAIN /* back to a clean slate */": false,
		"ROLLBACK /* nested /* to */ still */ AND CHAIN": false,
		"SELECT 'to'; ROLLBACK":                          false,
		"ROLLBACK TO x; ROLLBACK":                        false,
		"SELECT $$ROLLBACK TO a$$":                       false,
		"SELECT $t$; ROLLBACK TO a $t$; ROLLBACK":        false,
	}
	for sql, want := range cases {
		t.Run(sql, func(t *testing.T) {
			require.Equal(t, want, savepointRollback(sql))
		})
	}
}

func TestEndsTransaction(t *testing.T) {
	cases := map[string]bool{
		"COMMIT":                        true,
		"commit and chain":              true,
		"END":                           true,
		"ABORT":                         true,
		"ROLLBACK":                      true,
		"/* undo */ ROLLBACK AND CHAIN": true,
		"PREPARE TRANSACTION 'x'":       true,
		"ROLLBACK TO a":                 false,
		"ROLLBACK WORK TO SAVEPOINT a":  false,
		"PREPARE q AS SELECT 1":         false,
		"SELECT 'commit'":               false,
		"-- COMMIT\nSELECT 1":           false,
		"UPDATE t SET commit = 1":       false,
		"BEGIN":                         false,
		"":                              false,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END":          false,
		"CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END; COMMIT":          true,
		"CREATE OR REPLACE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END; -- commit": false,
		"SELECT 1 AS x$a$; COMMIT":                   true,
		"SELECT 1 AS x$a$; COMMIT; SELECT 2 AS y$a$": false,
		// transaction is an unreserved keyword: a prepared statement may be so named.
		"PREPARE transaction AS SELECT 1":           false,
		"prepare transaction(int) AS SELECT 1":      false,
		"PREPARE TRANSACTION $$x$$":                 true,
		"PREPARE TRANSACTION E'x'":                  true,
		"PREPARE TRANSACTION U&'x'":                 true,
		`PREPARE transaction ("int4") AS SELECT $1`: false,
		"PREPARE TRANSACTION":                       true,
	}
	for sql, want := range cases {
		t.Run(sql, func(t *testing.T) {
			require.Equal(t, want, endsTransaction(sql))
		})
	}
}

func TestSeveralStatements(t *testing.T) {
	cases := map[string]bool{
		"SELECT 1":                                 false,
		"SELECT 1;":                                false,
		"SELECT 1; -- done":                        false,
		"SELECT 1 ; /* done */ ;":                  false,
		"SELECT ';' || $1":                         false,
		`SELECT ";"`:                               false,
		"DO $$ BEGIN PERFORM 1; END $$":            false,
		"SELECT $t$a; b$t$":                        false,
		"SELECT 1 -- ; SELECT 2":                   false,
		"SELECT 1 /* ; SELECT 2 */":                false,
		"; SELECT 1":                               false,
		"SELECT 1; SELECT 2":                       true,
		"UPDATE a SET x = 1; UPDATE b SET x = 2":   true,
		"SELECT 'a'; SELECT 'b'":                   true,
		"DO $$ BEGIN PERFORM 1; END $$; SELECT 1":  true,
		"SELECT 1 /* c */ ; /* c */ SELECT 2":      true,
		"SET LOCAL a.b = '1'; SET LOCAL a.c = '2'": true,
		"SELECT E'it\\'s'; SELECT 2":               true,
		"SELECT $1::int; SELECT $2::int":           true,
		// A backslash is an escape only in E'...' strings: standard ones end at the next quote.
		`SELECT 1 WHERE 'a' LIKE 'a\_b' ESCAPE '\' AND 'x' <> ';'`: false,
		`INSERT INTO t VALUES ('C:\'); SELECT 'not yours'`:         true,
		`SELECT E'C:\\'; SELECT 2`:                                 true,
		`SELECT e'it\'s;'`:                                         false,
		`SELECT fe'it\'; SELECT 2`:                                 true,
		// A function's body in SQL (BEGIN ATOMIC) holds ';'s of its own, as psql reads it.
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END":                  false,
		"create or replace procedure p(begin int) begin atomic insert into t values (1); end;":               false,
		"CREATE FUNCTION f(x int) RETURNS int BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 END; SELECT 2; END": false,
		"CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END; SELECT 2":                               true,
		"CREATE TABLE t (a int); BEGIN; SELECT 1":                                                            true,
		"SELECT 1; CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END":                               true,
		"CREATE FUNCTION begin() RETURNS int LANGUAGE sql RETURN 1; SELECT 2":                                true,
		// '$' and multibyte characters go on an identifier: x$a$ opens no dollar quote.
		"SELECT 1 AS x$a$; COMMIT; SELECT 2 AS y$a$": true,
		"SELECT 1 AS é$a$; COMMIT":                   true,
		"SELECT 1 AS x$1; COMMIT":                    true,
		"SELECT 1 AS é$a$":                           false,
		// A dollar quote's tag may hold multibyte characters.
		"SELECT $é$'$é$; SELECT 2; SELECT '?'": true,
		"SELECT $é$ -- $é$; SELECT 2":          true,
		"SELECT $_é$;$_é$":                     false,
		// PostgreSQL ends a line comment at a carriage return too.
		"SELECT 1 -- c\r; SELECT 2":    true,
		"SELECT 1 -- c\r\n; SELECT 2":  true,
		"SELECT 1;\v":                  false,
		`SELECT 1 AS x$E'\'; SELECT 2`: true,
		`SELECT 1 AS éE'\'; SELECT 2`:  true,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC; END":                                       false,
		"CREATE FUNCTION f(p tc) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (p).end; END":                    false,
		"CREATE FUNCTION f(p tc) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT $1.end; SELECT 1 end; END":       false,
		"CREATE FUNCTION f(p tc) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (p).case; END; SELECT 1":         true,
		"CREATE FUNCTION f(p tc) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 case; SELECT 2; END; SELECT 1": true,
		"CREATE FUNCTION g(begin int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT begin atomic; END; END":     true,
		"SELECT E'a'\n'\\''; COMMIT":              true,
		"SELECT E'a'\n'\\'; COMMIT; --'":          false,
		"SELECT E'a'\n\n-- c\n '\\'; COMMIT; --'": false,
		"SELECT E'a' /* c */\n'\\'; COMMIT; --'":  true,
	}
	for sql, want := range cases {
		t.Run(sql, func(t *testing.T) {
			require.Equal(t, want, severalStatements(sql))
		})
	}
}

func TestNoStatement(t *testing.T) {
	cases := map[string]bool{
		"":                  true,
		" \n\t":             true,
		"-- nothing":        true,
		"/* x */ ; ;":       true,
		"SELECT 1":          false,
		"; SELECT 1":        false,
		"$$ $$":             false,
		"-- a\nSELECT 1 --": false,
		"-- a\rSELECT 42":   false,
	}
	for sql, want := range cases {
		t.Run(sql, func(t *testing.T) {
			require.Equal(t, want, noStatement(sql))
		})
	}
}

func TestChangesSchema(t *testing.T) {
	cases := map[string]bool{
		"CREATE TABLE t (v int)":                               true,
		"  -- make it\n create index on t (v)":                 true,
		"/* insert */ ALTER TABLE t ADD w int":                 true,
		"DROP TABLE t":                                         true,
		"CREATE TEMP TABLE t AS SELECT 1":                      true,
		"SET search_path = other":                              true,
		"set local search_path to other, public":               true,
		"SET ROLE someone":                                     true,
		"SET SESSION AUTHORIZATION someone":                    true,
		"SET LOCAL SESSION AUTHORIZATION someone":              true,
		"SET SESSION SESSION AUTHORIZATION someone":            true,
		"SET session_authorization = someone":                  true,
		"RESET SESSION AUTHORIZATION":                          true,
		"RESET role":                                           true,
		"SET SCHEMA 'other'":                                   true,
		`SET LOCAL "search_path" TO other`:                     true,
		"SET CONSTRAINTS ALL DEFERRED":                         false,
		"SET LOCAL app.role = 'x'":                             false,
		"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE":         false,
		"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY": false,
		"RESET ALL":                                   true,
		"DO $$ BEGIN CREATE TABLE t (); END $$":       true,
		"CALL make_tables()":                          true,
		"DISCARD TEMP":                                true,
		"SELECT 1 INTO t":                             true,
		"select v into temporary t from u":            true,
		"EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1":  true,
		"INSERT INTO t VALUES (1); CREATE TABLE u ()": true,
		"(SELECT 1)":                                  true,
		"SELECT * FROM t WHERE v = $1":                false,
		"select * from t; ":                           false,
		"INSERT INTO t VALUES ($1)":                   false,
		"UPDATE t SET v = 1":                          false,
		"DELETE FROM t":                               false,
		"MERGE INTO t USING u ON t.v = u.v WHEN MATCHED THEN DELETE":       false,
		"WITH x AS (SELECT 1) SELECT * FROM x":                             false,
		"WITH d AS (INSERT INTO t VALUES (1) RETURNING v) SELECT * FROM d": false,
		"SELECT nextval('s')":                false,
		"SELECT 'into' FROM t":               false,
		`SELECT "into" FROM t`:               false,
		"SET LOCAL statement_timeout = '5s'": false,
		"EXPLAIN SELECT * FROM t":            false,
		"-- create\nUPDATE t SET v = 2":      false,
		"TRUNCATE t":                         false,
		"":                                   false,
	}
	for sql, want := range cases {
		t.Run(sql, func(t *testing.T) {
			require.Equal(t, want, changesSchema(sql))
		})
	}
}

// mayEnd reports whether any statement of a text ends the transaction, where endsTransaction judges the last.
func TestMayEnd(t *testing.T) {
	cases := map[string]bool{
		"COMMIT": true, "commit and chain": true, "END": true, "ROLLBACK": true, "ABORT": true,
		"PREPARE TRANSACTION 'x'": true, "-- x\nCOMMIT": true, "SELECT 1; COMMIT": true,
		"COMMIT; SELECT 1": true, "commit; begin": true, ";COMMIT": true, "; commit": true, ";;END": true,
		"/* c */ ; ROLLBACK": true, "ROLLBACK WORK": true,
		"ROLLBACK TO sp": false, "ROLLBACK TRANSACTION TO sp": false, "SELECT 1; ROLLBACK TO sp": false,
		"PREPARE q AS SELECT 1": false, "SELECT 1": false, "UPDATE t SET v = 1": false, "/* commit */ SELECT 1": false,
		"SELECT 'commit'": false, "DO $$BEGIN COMMIT; END$$": false, "": false,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END":                                             false,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; END; SELECT 1":                            false,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT p.end FROM p; SELECT 2; END":                        false,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END":                     false,
		"CREATE FUNCTION f() RETURNS numeric LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 ELSE 2. END; END; COMMIT": true,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CAST(1 AS int) AS end; END; COMMIT":                 true,
		`CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT "p".end FROM p; END; COMMIT`:                        true,
		// A field of a row in parentheses, of a parameter or of an array element, and a bare column label (PostgreSQL
		// 14 on), named case or end, open or close no block; a ';' closes every CASE, and only a body statement's
		// first word END closes the body.
		"CREATE FUNCTION f(p tc) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (p).case; END; COMMIT":                    true,
		"CREATE FUNCTION f(p tc) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT $1.case; END; COMMIT":                     true,
		"CREATE FUNCTION f(p tc[]) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT p[1].case; END; COMMIT":                 true,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 case; END; COMMIT":                          true,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 2.case; END; END":                             true,
		"CREATE FUNCTION f(p tc) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (p).end; END":                             false,
		"CREATE FUNCTION f(p tc) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT $1.end; END":                              false,
		"CREATE FUNCTION f(p tc[]) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT p[1].end; END":                          false,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 end; END":                                   false,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 end; SELECT 2 case; END; SELECT 1":          false,
		"CREATE FUNCTION f(p tc) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (p).case, CASE WHEN true THEN 1 END; END": false,
		// Inside a body BEGIN ATOMIC opens nothing: a column begin labelled atomic.
		"CREATE FUNCTION g(begin int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT begin atomic; END; END": true,
		"CREATE FUNCTION g(begin int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT begin atomic; END":      false,
		// An escape string continued after a line break keeps its escapes.
		"SELECT E'a'\n'\\''; COMMIT; BEGIN":                    true,
		"SELECT E'a' -- c\n  '\\''; COMMIT":                    true,
		"SELECT E'a'\n'\\'; COMMIT; --'; SELECT 1":             false,
		"SELECT 'a'\n'b'; SELECT 1":                            false,
		"PREPARE transaction AS SELECT 1; EXECUTE transaction": false,
		"SELECT 1; PREPARE TRANSACTION e'g'; BEGIN":            true,
	}
	for sql, want := range cases {
		t.Run(sql, func(t *testing.T) {
			require.Equal(t, want, mayEnd(sql))
			if !severalStatements(sql) {
				require.Equal(t, endsTransaction(sql), mayEnd(sql), "one statement: as endsTransaction")
			}
		})
	}
	// A body statement cannot end the transaction: one that reads so counts, whatever the lexer made of the body,
	// though the text is one statement to it.
	for _, sql := range []string{
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; COMMIT; END",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; rollback work; END",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; PREPARE TRANSACTION 'x'; END",
	} {
		require.True(t, mayEnd(sql), sql)
	}
	require.False(t, mayEnd("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;"))
	require.Zero(t, testing.AllocsPerRun(100, func() { mayEnd("UPDATE accounts SET balance = balance + $1") }))
	require.Zero(t, testing.AllocsPerRun(100, func() {
		mayEnd("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END")
	}))
	require.Zero(t, testing.AllocsPerRun(100, func() { mayEnd("COMMIT; SELECT 1") }))
}

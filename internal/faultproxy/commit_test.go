package faultproxy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
)

func TestIsCommit(t *testing.T) {
	tests := []struct {
		name string
		typ  byte
		sql  string
		want bool
	}{
		{name: "commit", typ: 'Q', sql: "commit", want: true},
		{name: "upper case with semicolon and spaces", typ: 'Q', sql: "  COMMIT ; \n", want: true},
		{name: "several trailing semicolons", typ: 'Q', sql: "commit;;", want: true},
		{name: "end", typ: 'Q', sql: "End", want: true},
		{name: "commit work", typ: 'Q', sql: "commit work", want: true},
		{name: "end transaction", typ: 'Q', sql: "END TRANSACTION;", want: true},
		{name: "commit and no chain", typ: 'Q', sql: "COMMIT AND NO CHAIN", want: true},
		{name: "commit transaction and chain", typ: 'Q', sql: "commit transaction and chain", want: true},
		{name: "multi-statement query ending with commit", typ: 'Q', sql: "begin; insert into t values (1); commit;", want: true},
		{name: "comments around commit", typ: 'Q', sql: "/* a /* nested */ one */ commit -- done", want: true},
		{name: "parse of commit", typ: 'P', sql: "commit", want: true},
		{name: "bind of commit", typ: 'B', sql: "commit", want: true},
		{name: "execute is not judged by SQL", typ: 'E', sql: "commit", want: false},
		{name: "rollback", typ: 'Q', sql: "rollback", want: false},
		{name: "commit prepared", typ: 'Q', sql: "commit prepared 'x'", want: false},
		{name: "commit first, then more", typ: 'Q', sql: "commit; select 1", want: false},
		{name: "commit inside a string", typ: 'Q', sql: "select 'x;commit'", want: false},
		{name: "commit inside a dollar quote", typ: 'Q', sql: "select $f$ ; commit $f$", want: false},
		{name: "commit inside a line comment", typ: 'Q', sql: "select 1 -- ; commit", want: false},
		{name: "quoted identifier", typ: 'Q', sql: `select 1; "commit"`, want: false},
		{name: "commit with extra words", typ: 'Q', sql: "commit work work", want: false},
		{name: "prefix of a longer word", typ: 'Q', sql: "commits", want: false},
		{name: "empty", typ: 'Q', sql: "", want: false},
		{name: "only semicolons", typ: 'Q', sql: " ; ; ", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, faultproxy.IsCommit(faultproxy.Message{Type: tt.typ, SQL: tt.sql}))
		})
	}
}

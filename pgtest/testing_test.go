package pgtest_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

// A failure to get a server gets the hint that fits it: installing PostgreSQL only when it is missing, and letting
// the server's OS user reach TMPDIR only when running as root into a permission error.
func TestHintFitsTheFailure(t *testing.T) {
	const install, tmpdir = "apt-get install", "TMPDIR"
	initdbDenied := errors.New("pgtest: initdb -D /root/tmp/pgtest-1/data: exit status 1: initdb: error: could " +
		"not access directory \"/root/tmp/pgtest-1/data\": Permission denied")
	for _, c := range []struct {
		name     string
		err      error
		asRoot   bool
		want     []string // in the message
		wantNone []string // not in it
	}{
		{name: "missing binaries say what to install, once", err: fmt.Errorf("x: %w", pgtest.ErrNoPostgres),
			asRoot: true, want: []string{install}, wantNone: []string{tmpdir}},
		{name: "a remote DATABASE_URL", err: pgtest.ErrNotLoopback, want: []string{"unset DATABASE_URL"},
			wantNone: []string{install}},
		{name: "a server program denied access, as root", err: initdbDenied, asRoot: true,
			want: []string{tmpdir, "OS user postgres"}, wantNone: []string{install}},
		{name: "this process denied access, as root", err: fmt.Errorf("pgtest: create temp dir: %w", fs.ErrPermission),
			asRoot: true, want: []string{tmpdir}, wantNone: []string{install}},
		{name: "a permission error not as root: the server is this user", err: initdbDenied,
			wantNone: []string{install, tmpdir}},
		{name: "any other failure, as root", err: errors.New("pgtest: pg_ctl start: exit status 1"), asRoot: true,
			wantNone: []string{install, tmpdir}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := pgtest.AddHint(c.err, c.asRoot)
			require.ErrorIs(t, err, c.err, "the hint keeps the error")
			require.LessOrEqual(t, strings.Count(err.Error(), install), 1, "the install hint at most once: %s", err)
			for _, s := range c.want {
				require.Contains(t, err.Error(), s)
			}
			for _, s := range c.wantNone {
				require.NotContains(t, err.Error(), s)
			}
		})
	}
}

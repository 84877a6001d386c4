package pgbench_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// pgtestConfig parses a connection string.
func pgtestConfig(t *testing.T, connString string) pgconn.Config {
	t.Helper()
	c, err := pgconn.ParseConfig(connString)
	require.NoError(t, err)
	return *c
}

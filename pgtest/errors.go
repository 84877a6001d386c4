package pgtest

import "errors"

var (
	// ErrNotLoopback is returned when DATABASE_URL names a server that is not on this machine's loopback
	// interface: pgtest creates and drops databases, so it only ever talks to a local, disposable server.
	ErrNotLoopback = errors.New("pgtest: DATABASE_URL host is not loopback")

	// ErrNoPostgres is returned when no PostgreSQL server binaries (initdb, pg_ctl) can be found.
	ErrNoPostgres = errors.New("pgtest: PostgreSQL binaries not found (install with: apt-get install -y postgresql)")

	// ErrExternal is returned by operations that need an embedded cluster when the cluster is the
	// DATABASE_URL server.
	ErrExternal = errors.New("pgtest: not supported for a DATABASE_URL server")

	// ErrStopped is returned when a stopped cluster is used.
	ErrStopped = errors.New("pgtest: cluster stopped")
)

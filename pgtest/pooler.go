package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
)

// poolerEnv names the environment variable that routes the connection strings of [ConnString], [Config] and
// [Pool] through a connection pooler.
const poolerEnv = "PGXACT_TEST_POOLER"

// pooledExecMode is the pgx query execution mode of pooled connection strings. pgbouncer before 1.21 cannot
// carry the default, cached prepared statements; exec keeps the default's one round trip per statement
// (cache_describe costs a Describe round trip the first time) and leaves no state on the server connection.
const pooledExecMode = "exec"

// errPooler is wrapped by the errors of the pooler mode, which fail tests (never skip them).
var errPooler = errors.New("pgtest: " + poolerEnv + "=pgbouncer")

// pooled is the per-binary pgbouncer of the pooler mode, started on first use in front of the shared
// cluster and stopped by [Main] before it.
var pooled struct {
	mu      sync.Mutex
	bouncer *Pgbouncer
	err     error
	done    bool
}

// Pooled reports whether the tests run through pgbouncer: PGXACT_TEST_POOLER=pgbouncer. Any other
// non-empty value fails every test asking for a database.
func Pooled() bool { return os.Getenv(poolerEnv) != "" }

// sharedPgbouncer returns the binary's pgbouncer in front of c, starting it on first call.
func sharedPgbouncer(c *Cluster) (*Pgbouncer, error) {
	pooled.mu.Lock()
	defer pooled.mu.Unlock()
	if !pooled.done {
		pooled.bouncer, pooled.err = startPooler(c)
		pooled.done = true
	}
	return pooled.bouncer, pooled.err
}

func startPooler(c *Cluster) (*Pgbouncer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	p, err := c.StartPgbouncer(ctx)
	if errors.Is(err, ErrExternal) {
		return nil, fmt.Errorf("%w needs an embedded cluster: unset %s", errPooler, databaseURLEnv)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errPooler, err)
	}
	return p, nil
}

// stopPooler stops the pooler mode's pgbouncer if one was started; afterwards it is not started again.
func stopPooler() {
	pooled.mu.Lock()
	defer pooled.mu.Unlock()
	if pooled.bouncer != nil {
		_ = pooled.bouncer.Stop()
	}
	pooled.bouncer, pooled.err, pooled.done = nil, ErrStopped, true
}

// pooledConnString is the connection string of database dbname through the binary's pgbouncer.
func pooledConnString(c *Cluster, dbname string) (string, error) {
	if mode := os.Getenv(poolerEnv); mode != "pgbouncer" {
		return "", fmt.Errorf("pgtest: %s=%q: the only pooler is pgbouncer", poolerEnv, mode)
	}
	p, err := sharedPgbouncer(c)
	if err != nil {
		return "", err
	}
	return p.ConnString(dbname) + "&default_query_exec_mode=" + pooledExecMode, nil
}

package pgtest

import (
	"context"
	"os"
)

// Start returns a running cluster for programs that are not tests (benchmark CLIs, demos): the
// DATABASE_URL server if that variable is set, else a new embedded server. The caller must call
// [Cluster.Stop]; should the process die first, a helper process stops an embedded server anyway.
func Start(ctx context.Context) (*Cluster, error) {
	if connString := os.Getenv(databaseURLEnv); connString != "" {
		return startExternal(ctx, connString)
	}
	c, err := startEmbedded(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.openAdmin(ctx, c.ConnString("postgres")); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

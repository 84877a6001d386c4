package pgtest

import (
	"context"
	"fmt"
	"os"
	"strconv"
)

// StartReplica starts a streaming hot standby of c: a base backup taken with pg_basebackup -R -X stream,
// run as the same OS user on a new free loopback port. The replica is read-only, so CreateDatabase on it
// fails; databases created on c appear on it. Stop removes it; stop replicas before their primary, or they
// log reconnection attempts until stopped. For a DATABASE_URL cluster StartReplica returns an error for
// which errors.Is(err, ErrExternal) is true.
func (c *Cluster) StartReplica(ctx context.Context) (*Cluster, error) {
	if c.external != "" {
		return nil, fmt.Errorf("%w: StartReplica", ErrExternal)
	}
	if c.stopped.Load() {
		return nil, ErrStopped
	}
	dir, err := newServerDir(c.cred)
	if err != nil {
		return nil, err
	}
	replica := &Cluster{dir: dir, binDir: c.binDir, cred: c.cred}
	if err := replica.cloneAndStart(ctx, c); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := replica.openAdmin(ctx, replica.ConnString("postgres")); err != nil {
		_ = replica.Stop()
		return nil, err
	}
	return replica, nil
}

// cloneAndStart copies primary's data directory with replication settings, then moves the copy's socket
// into its own directory (the copied postgresql.conf still names the primary's) and starts it.
func (c *Cluster) cloneAndStart(ctx context.Context, primary *Cluster) error {
	basebackup, err := binary(c.binDir, "pg_basebackup")
	if err != nil {
		return err
	}
	// -c fast: a spread checkpoint could make the copy wait for minutes; --no-sync: throwaway data.
	cmd := serverCommand(ctx, c.cred, c.dir, basebackup, "-D", c.dataDir(),
		"-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", serverUser,
		"-R", "-X", "stream", "-c", "fast", "--no-sync")
	killGroupOnCancel(cmd) // -X stream forks a WAL streamer, which an interrupted copy must not leave running
	err = runCommand(cmd)
	if err != nil {
		return err
	}
	settings := []string{"unix_socket_directories = " + quoteSetting(c.dir), "hot_standby = on"}
	if err := appendSettings(c.dataDir(), settings); err != nil {
		return err
	}
	return c.startOnFreePort(ctx)
}

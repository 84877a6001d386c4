package pgtest

import (
	"context"
	"errors"
	"fmt"
)

// Crash stops an embedded server the way a power cut would (pg_ctl stop -m immediate: no shutdown checkpoint, every
// session cut), keeping its data directory and port so that [Cluster.Restart] can bring it back. Crashing a server
// that is already down is not an error. For a DATABASE_URL cluster Crash returns an error for which
// errors.Is(err, ErrExternal) is true.
func (c *Cluster) Crash(ctx context.Context) error {
	if err := c.controllable("Crash"); err != nil {
		return err
	}
	if c.down.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	if err := c.stopImmediate(ctx); err != nil {
		return err
	}
	c.down.Store(true)
	return nil
}

// Restart starts a server that [Cluster.Crash] stopped, on the same port, and waits until it accepts connections
// (crash recovery included). A standby comes back as a standby and resumes streaming.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.controllable("Restart"); err != nil {
		return err
	}
	if !c.down.Load() {
		return fmt.Errorf("pgtest: restart: the server on port %d is running", c.port)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := runCommand(c.pgCtl(ctx, "start", "-l", c.logFile())); err != nil {
		err = fmt.Errorf("%w\nlast lines of %s:\n%s", err, c.logFile(), logTail(c.logFile(), 20))
		// pg_ctl may have launched the postmaster before it failed (its ctx ended during crash recovery): stop it,
		// so that the cluster is down as the error says, and Crash, Restart and Stop go on to work.
		if c.pidFileExists() {
			stopCtx, stopCancel := context.WithTimeout(context.Background(), stopTimeout)
			defer stopCancel()
			if stopErr := c.stopImmediate(stopCtx); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
		}
		return err
	}
	c.down.Store(false)
	return nil
}

// Promote turns a standby made by [Cluster.StartReplica] into a primary on a new timeline (pg_ctl promote) and
// waits until it accepts writes. Its primary is not told: stop or crash it first, or there are two.
func (c *Cluster) Promote(ctx context.Context) error {
	if err := c.controllable("Promote"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return runCommand(c.pgCtl(ctx, "promote"))
}

func (c *Cluster) controllable(what string) error {
	if c.external != "" {
		return fmt.Errorf("%w: %s", ErrExternal, what)
	}
	if c.stopped.Load() {
		return ErrStopped
	}
	return nil
}

package replica

import (
	"fmt"
	"time"
)

// Option configures a Router. The zero configuration waits up to DefaultMaxWait for a replica to catch up with a
// session and skips a failing replica for DefaultCooldown.
type Option func(*config)

const (
	// DefaultMaxWait bounds how long a session's read waits for a replica to replay the session's last commit
	// before it goes to the primary instead.
	DefaultMaxWait = 50 * time.Millisecond
	// DefaultCooldown is how long a replica that failed is left out of the rotation.
	DefaultCooldown = 5 * time.Second
)

type config struct {
	maxWait  time.Duration
	cooldown time.Duration
	err      error
}

// WithMaxWait sets how long, at most, a Session's read-only transaction waits on a replica for
// pg_last_wal_replay_lsn() to reach the session's token before it falls back to the primary (default
// DefaultMaxWait). Zero means look once and never wait; a negative duration is invalid.
//
// The wait holds a replica connection and adds to the transaction's latency, so keep it near your replicas' usual
// lag. A replica that missed the deadline is only looked at once, without waiting, for the next Cooldown. All of a
// replica pool's connections but one (at least one) may wait at once; a read that finds that many waiting looks once
// and, if the replica is behind, goes to the primary.
//
// Choosing a replica, for token-less reads too, takes at most MaxWait plus 250 ms: lending connections and answering
// replay looks get 250 ms beyond MaxWait. An exhausted replica pool is skipped (the next replica or the primary
// serves the read), and its replica dialled outside the pool in the background, at most once per cooldown (but
// between every 1.25 s and every 5 s), to tell a busy replica from a frozen one; a replica that stops answering is
// left out for the cooldown.
//
// A caller's ctx with a deadline keeps a reserve for the primary, half of the time left, at most 250 ms of it: the
// wait for replay ends where the reserve begins, if MaxWait would end later, and lending a replica's connection
// stops there too (each replica getting a share of the time left before it, when that is less than its share of
// 250 ms), and each replay look must be answered by then, or within 25 ms of its start if that is later but never
// after half the time the caller has left, so that the read is served rather than failed. That cuts the replicas'
// time short for a deadline less than MaxWait plus 500 ms away. A look or a dial that a deadline so cut short leaves
// unanswered, after 25 ms or more, has the replica passed over for the cooldown by reads that give it as little time
// (or a quarter more); reads with more time still try it, and those without a cut leave it out if it fails them. A
// replica still behind after a wait cut to under half of MaxWait is not counted as having missed the deadline (after
// a longer one it is).
func WithMaxWait(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.err = fmt.Errorf("%w: negative MaxWait %v", ErrInvalid, d)
			return
		}
		c.maxWait = d
	}
}

// WithCooldown sets how long a replica is left out after it failed: its pool could not lend a connection, a query
// on it failed, or it turned out not to be a standby when a read with a position looked (default DefaultCooldown).
// Zero retries it on the next transaction; a negative duration is invalid.
func WithCooldown(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.err = fmt.Errorf("%w: negative Cooldown %v", ErrInvalid, d)
			return
		}
		c.cooldown = d
	}
}

func newConfig(opts []Option) (config, error) {
	c := config{maxWait: DefaultMaxWait, cooldown: DefaultCooldown}
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("%w: nil Option", ErrInvalid)
		}
		o(&c)
		if c.err != nil {
			return c, c.err
		}
	}
	return c, nil
}

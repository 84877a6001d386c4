package pgtest

import (
	"context"
	"os/user"
)

// CheckLoopback exposes the DATABASE_URL host check to the external test package.
var CheckLoopback = checkLoopback

// WithDatabase exposes the DATABASE_URL rewriting to the external test package.
var WithDatabase = withDatabase

// RunInterruptible runs a command as cloneAndStart runs pg_basebackup: its process group killed when ctx ends, and
// its output waited for only so long after.
func RunInterruptible(ctx context.Context, name string, args ...string) error {
	cmd := serverCommand(ctx, nil, "", name, args...)
	killGroupOnCancel(cmd)
	return runCommand(cmd)
}

// AddHint exposes the hint added to a failure to get a server, for a process running as root or not.
var AddHint = addHint

// CreateUserAttempts is how many times EnsureServerUser runs useradd before giving up.
const CreateUserAttempts = createUserAttempts

// EnsureServerUser looks up, or creates, the server user with lookup and create standing for user.Lookup and
// useradd, without pausing between attempts.
func EnsureServerUser(lookup func(string) (*user.User, error), create func() error) (*user.User, error) {
	return ensureServerUser(lookup, create, 0)
}

// FreePort and EphemeralLow expose the choice of server ports.
var (
	FreePort     = freePort
	EphemeralLow = ephemeralLow
)

// StableNow is one look of the waits for a stable cluster: the monitor's states, then the servers' own word.
func (h *HA) StableNow(ctx context.Context) (HANode, error) { return h.stable(ctx, "") }

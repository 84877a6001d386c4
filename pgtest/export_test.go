package pgtest

import "context"

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

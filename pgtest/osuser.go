package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// serverUser is the OS user PostgreSQL programs run as when pgtest runs as root.
const serverUser = "postgres"

// serverCredential returns the credential for server processes: nil (the current user) unless running as
// root, which initdb and postgres refuse; then the unprivileged postgres user, created if missing.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := ensureServerUser(user.Lookup, createServerUser, createUserPause)
	if err != nil {
		return nil, err
	}
	return credentialOf(u)
}

// How often, and how far apart, ensureServerUser runs useradd while the user stays missing. useradd fails at once
// when another holds the lock on /etc/passwd or /etc/group, which it keeps for milliseconds.
const (
	createUserAttempts = 5
	createUserPause    = 200 * time.Millisecond
)

// ensureServerUser looks up the server user, creating it with create if it is missing. Test binaries started
// together race to create it, and the losers' useradd fails ("already exists", or "cannot lock /etc/passwd" while
// the winner writes it), so a failed create counts only if the user is still missing after it; then it is retried,
// a bounded number of times, in case the lock was held by something else. Every failure is retried rather than only
// the lock's: useradd's messages are translated and its exit codes for a lock vary with the file.
func ensureServerUser(lookup func(string) (*user.User, error), create func() error, pause time.Duration) (
	*user.User, error) {
	u, err := lookup(serverUser)
	var createErr error
	for attempt := 1; isUnknownUser(err) && attempt <= createUserAttempts; attempt++ {
		if attempt > 1 {
			time.Sleep(pause)
		}
		createErr = create()
		u, err = lookup(serverUser)
	}
	if isUnknownUser(err) && createErr != nil {
		return nil, createErr // says why the user is missing
	}
	if err != nil {
		return nil, fmt.Errorf("pgtest: look up OS user %s: %w", serverUser, err)
	}
	return u, nil
}

func isUnknownUser(err error) bool {
	return errors.As(err, new(user.UnknownUserError))
}

func createServerUser() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "useradd", "--system", "--no-create-home", serverUser).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: create OS user %s: %w: %s", serverUser, err, out)
	}
	return nil
}

func credentialOf(u *user.User) (*syscall.Credential, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: uid of %s: %w", u.Username, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: gid of %s: %w", u.Username, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// chownTo gives path to the server user so the server can write there; a no-op for a nil credential.
func chownTo(path string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: chown %s: %w", path, err)
	}
	return nil
}

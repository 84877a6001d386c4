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
	u, err := user.Lookup(serverUser)
	if errors.As(err, new(user.UnknownUserError)) {
		if err := createServerUser(); err != nil {
			return nil, err
		}
		u, err = user.Lookup(serverUser)
	}
	if err != nil {
		return nil, fmt.Errorf("pgtest: look up OS user %s: %w", serverUser, err)
	}
	return credentialOf(u)
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

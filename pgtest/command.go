package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// serverCommand builds a command that runs as the server user inside dir. The environment drops PG*
// variables so a developer's PGDATA or PGPORT cannot redirect pgtest's server programs.
func serverCommand(ctx context.Context, cred *syscall.Credential, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd
}

// killGroupOnCancel makes cmd start in a process group of its own and, when its context ends, kills the whole group:
// what it forked (pg_basebackup's WAL streamer) goes with it instead of living on.
func killGroupOnCancel(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// commandWaitDelay bounds how long runCommand waits for a killed command's output: a child it forked (pg_basebackup's
// WAL streamer) can hold the pipe open after the command itself is gone, and Wait would otherwise block on it.
const commandWaitDelay = 3 * time.Second

// runCommand runs cmd and returns an error carrying its output, which is where initdb and pg_ctl explain
// their failures.
func runCommand(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = commandWaitDelay
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgtest: %s: %w: %s", strings.Join(cmd.Args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

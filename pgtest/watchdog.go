package pgtest

import (
	"fmt"
	"os"
	"syscall"
)

// A watchdog is a helper shell process that cleans up after a server (PostgreSQL or pgbouncer) when its
// owner dies without stopping it: the helper blocks reading its stdin, a pipe whose write end only the
// owner holds, so it reads end-of-file when the owner exits however it exits (a test-timeout panic,
// os.Exit, SIGKILL), then runs its cleanup. After a normal Stop the cleanup finds nothing left to do.
type watchdog struct {
	pipe *os.File
	proc *os.Process
}

// Watchdog cleanup scripts; "$0", "$1", ... are the arguments given to startWatchdog. Each skips its cleanup
// when dismissed: reading "done" means the owner cleaned up itself, and a kill by a pid that may since have
// been reused must not happen.
const (
	// stopClusterScript: pg_ctl, data directory, directory to remove.
	stopClusterScript = `read line; [ "$line" = done ] && exit 0; "$0" stop -D "$1" -m immediate >/dev/null 2>&1; rm -rf "$2"`
	// killProcessScript: pid, directory to remove.
	killProcessScript = `read line; [ "$line" = done ] && exit 0; kill -9 "$0" 2>/dev/null; rm -rf "$1"`
)

// startWatchdog starts a helper running script with args, as the server user (pg_ctl refuses root) in its
// own process group, so a terminal's Ctrl-C reaches the owner but not the helper that must outlive it.
func startWatchdog(dir string, cred *syscall.Credential, script string, args ...string) (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pgtest: watchdog pipe: %w", err)
	}
	defer r.Close()
	attr := &os.ProcAttr{
		Dir:   dir,
		Env:   cleanEnv(),
		Files: []*os.File{r, nil, nil},
		Sys:   &syscall.SysProcAttr{Credential: cred, Setpgid: true},
	}
	proc, err := os.StartProcess("/bin/sh", append([]string{"sh", "-c", script}, args...), attr)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("pgtest: start watchdog: %w", err)
	}
	return &watchdog{pipe: w, proc: proc}, nil
}

// dismiss tells the helper its owner cleaned up, and reaps it.
func (w *watchdog) dismiss() {
	if w != nil {
		_, _ = w.pipe.WriteString("done\n")
		w.finish()
	}
}

// fire makes the helper clean up now, as if the owner had died, and waits for it.
func (w *watchdog) fire() {
	if w != nil {
		w.finish()
	}
}

func (w *watchdog) finish() {
	w.pipe.Close()
	_, _ = w.proc.Wait()
}

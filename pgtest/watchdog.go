package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// watchdogScript waits for end-of-file on stdin, which happens when the owning process exits however it
// exits (including a test-timeout panic or SIGKILL), then stops the server and removes its directory.
// After a normal Stop both steps find nothing left to do.
const watchdogScript = `read ignored; "$0" stop -D "$1" -m immediate >/dev/null 2>&1; rm -rf "$2"`

// A watchdog is a helper process that cleans up an embedded server when its owner dies without Stop.
type watchdog struct {
	pipe *os.File // write end of the helper's stdin; the owner holds it open while alive
	proc *os.Process
}

// startWatchdog starts the helper as the server user (pg_ctl refuses root) in its own process group, so
// the terminal's Ctrl-C reaches the owner but not the helper that must outlive it.
func startWatchdog(c *Cluster) (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pgtest: watchdog pipe: %w", err)
	}
	defer r.Close()
	attr := &os.ProcAttr{
		Dir:   c.dir,
		Env:   cleanEnv(),
		Files: []*os.File{r, nil, nil},
		Sys:   &syscall.SysProcAttr{Credential: c.cred, Setpgid: true},
	}
	args := []string{"sh", "-c", watchdogScript, filepath.Join(c.binDir, "pg_ctl"), c.dataDir(), c.dir}
	proc, err := os.StartProcess("/bin/sh", args, attr)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("pgtest: start watchdog: %w", err)
	}
	return &watchdog{pipe: w, proc: proc}, nil
}

// release lets the helper run its (by now redundant) cleanup and exit, and reaps it.
func (w *watchdog) release() {
	if w == nil {
		return
	}
	w.pipe.Close()
	_, _ = w.proc.Wait()
}

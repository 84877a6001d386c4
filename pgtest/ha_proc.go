package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// A groupProc is a pg_autoctl process leading its own process group, which its Postgres joins: one SIGKILL
// to the group kills the keeper and the postmaster together, so the keeper cannot restart what was killed.
// (Postgres backends run in sessions of their own and exit when they see the postmaster gone.)
type groupProc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{} // closed once the process has exited; err is then set
	err    error
}

// killGroupsScript is the HA cluster's watchdog: "$0" is a file listing the live process groups, one per
// line, "$1" the cluster's directory. It does what Stop does: kill the groups, then the stragglers (see
// killStragglers), then remove the directory.
const killGroupsScript = `read line; [ "$line" = done ] && exit 0; ` +
	`for g in $(cat "$0" 2>/dev/null); do kill -9 -"$g" 2>/dev/null; done; ` +
	`for p in /proc/[0-9]*; do case "$(readlink "$p/cwd" 2>/dev/null)" in "$1"|"$1"/*) kill -9 "${p#/proc/}" 2>/dev/null;; esac; done; ` +
	`rm -rf "$1"`

func (h *HA) groupsFile() string { return filepath.Join(h.dir, "process-groups") }

// startWatchdog starts the helper that kills the listed process groups if this process dies.
func (h *HA) startWatchdog() error {
	if err := writeFile(h.groupsFile(), "", h.cred); err != nil {
		return err
	}
	// Its working directory is "/", so that its own sweep for processes working in h.dir spares it.
	w, err := startWatchdog("/", h.cred, killGroupsScript, h.groupsFile(), h.dir)
	h.watchdog = w
	return err
}

// autoctlEnv keeps pg_autoctl's configuration and state files (found through XDG_* and HOME) inside the
// cluster's directory, and points its local connections at the cluster's socket directory as postgres.
func (h *HA) autoctlEnv() []string {
	return append(cleanEnv(),
		"HOME="+h.dir,
		"XDG_CONFIG_HOME="+filepath.Join(h.dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(h.dir, "share"),
		"XDG_RUNTIME_DIR="+filepath.Join(h.dir, "run"),
		"PGHOST="+h.socketDir(),
		"PGUSER="+serverUser,
	)
}

// runAutoctl runs a short pg_autoctl command (one that starts no server) and returns its error with its output.
func (h *HA) runAutoctl(ctx context.Context, args ...string) error {
	cmd := serverCommand(ctx, h.cred, h.dir, h.autoctlBin, args...)
	cmd.Env = h.autoctlEnv()
	return runCommand(cmd)
}

// spawn starts pg_autoctl with args as process group name, logging to <name>.log (appended across
// restarts). The group is listed for the watchdog before spawn returns.
func (h *HA) spawn(name string, args ...string) (*groupProc, error) {
	logPath := filepath.Join(h.dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgtest: open %s: %w", logPath, err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd := serverCommand(context.Background(), h.cred, h.dir, h.autoctlBin, args...)
	cmd.Env = h.autoctlEnv()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p := &groupProc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped.Load() {
		return nil, ErrStopped
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgtest: start pg_autoctl %s: %w", strings.Join(args, " "), err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	h.procs[name] = p
	return p, h.writeGroupsLocked()
}

// runToEnd spawns a pg_autoctl command that exits by itself (create), waits for it, then kills its
// group, in case it left a Postgres behind, as a failed create may.
func (h *HA) runToEnd(ctx context.Context, name string, args ...string) error {
	p, err := h.spawn(name, args...)
	if err != nil {
		return err
	}
	defer h.kill(name)
	select {
	case <-p.exited:
	case <-ctx.Done():
		return fmt.Errorf("pgtest: pg_autoctl %s: %w\n%s", args[0]+" "+args[1], ctx.Err(), logTail(p.log, 20))
	}
	if p.err != nil {
		return fmt.Errorf("pgtest: pg_autoctl %s: %w\n%s", args[0]+" "+args[1], p.err, logTail(p.log, 20))
	}
	return nil
}

// kill SIGKILLs process group name, if running, and waits for its leader to exit.
func (h *HA) kill(name string) {
	h.mu.Lock()
	p := h.procs[name]
	delete(h.procs, name)
	h.mu.Unlock()
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	h.mu.Lock()
	defer h.mu.Unlock()
	_ = h.writeGroupsLocked()
}

// killAll kills every process group at once, so no keeper sees another node die first and reacts.
func (h *HA) killAll() {
	h.mu.Lock()
	procs := h.procs
	h.procs = map[string]*groupProc{}
	h.mu.Unlock()
	for _, p := range procs {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	for _, p := range procs {
		<-p.exited
	}
}

// killStragglers SIGKILLs every process working in dir, where Postgres processes run (in their data
// directory) and pg_autoctl too. Killing a postmaster leaves its children, in sessions of their own, to
// exit when they notice; most do, but pg_auto_failover's health check worker and with it the logger never
// do. Linux only, like the rest of pgtest's process handling.
func killStragglers(dir string) {
	links, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, link := range links {
		cwd, err := os.Readlink(link)
		cwd = strings.TrimSuffix(cwd, " (deleted)")
		if err != nil || (cwd != dir && !strings.HasPrefix(cwd, dir+"/")) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(link))); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// exited returns an error naming a process that should be running and is not, with its log's last lines.
func (h *HA) exited(names ...string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range names {
		p := h.procs[name]
		if p == nil {
			continue
		}
		select {
		case <-p.exited:
			return fmt.Errorf("pgtest: pg_autoctl for %s exited: %v\n%s", name, p.err, logTail(p.log, 20))
		default:
		}
	}
	return nil
}

// writeGroupsLocked rewrites the watchdog's list with the live groups only, so the watchdog never kills a
// group id the kernel may have reused.
func (h *HA) writeGroupsLocked() error {
	var lines []string
	for _, p := range h.procs {
		lines = append(lines, strconv.Itoa(p.cmd.Process.Pid))
	}
	slices.Sort(lines)
	// Write and rename, so the watchdog never reads half a list.
	tmp := h.groupsFile() + ".new"
	if err := writeFile(tmp, strings.Join(lines, "\n")+"\n", h.cred); err != nil {
		return err
	}
	if err := os.Rename(tmp, h.groupsFile()); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

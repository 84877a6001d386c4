package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A FrozenNode is a former primary that [HA.FreezePrimary] stopped with SIGSTOP: alive, holding its data, sockets
// and sessions, but answering no one. Resume or Rejoin it before [HA.Stop], which kills only the keeper's process
// group: Postgres backends run in sessions of their own, and a stopped backend never notices that its postmaster
// died. A FrozenNode is safe for concurrent use.
type FrozenNode struct {
	HANode
	h    *HA
	pids []int // the keeper's process group (negative) and every Postgres process of the node

	once sync.Once
}

// FreezePrimary is a failover by partition: it waits for the cluster to be stable, then stops (SIGSTOP) every
// process of the primary — its pg_autoctl keeper, its postmaster and every Postgres child — so that clients, the
// monitor and the standby all lose it while it keeps running. It waits until the monitor has promoted the standby and
// that accepts writes, and returns the frozen node, still frozen, with how long after the freeze the new primary
// first accepted a write (measured every 100 ms). Connections to the frozen node, open or new, hang: a test that wants
// clients kept off it after it resumes, before pg_auto_failover demotes it, fences it (a proxy) before calling
// [FrozenNode.Rejoin]. It waits at most three minutes for the promotion after the cluster was stable.
func (h *HA) FreezePrimary(ctx context.Context) (*FrozenNode, time.Duration, error) {
	old, err := h.waitStable(ctx, "")
	if err != nil {
		return nil, 0, err
	}
	f, err := h.freeze(old)
	if err != nil {
		return nil, 0, err
	}
	frozen := time.Now()
	next := h.other(old)
	err = h.poll(ctx, "promote "+next.Name, func(ctx context.Context) error { return acceptsWrite(ctx, next) })
	downtime := time.Since(frozen)
	if err != nil {
		f.Resume()
		return nil, downtime, err
	}
	return f, downtime, nil
}

// freeze stops the keeper's group first, the postmaster with it, so that no Postgres child is forked while the
// children are listed and stopped.
func (h *HA) freeze(node HANode) (*FrozenNode, error) {
	h.mu.Lock()
	p := h.procs[node.Name]
	h.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("pgtest: freeze %s: its keeper is not running", node.Name)
	}
	f := &FrozenNode{HANode: node, h: h, pids: []int{-p.cmd.Process.Pid}}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("pgtest: freeze %s: %w", node.Name, err)
	}
	postmaster, err := postmasterPID(h.dataDir(node.Name))
	if err != nil {
		f.Resume()
		return nil, fmt.Errorf("pgtest: freeze %s: %w", node.Name, err)
	}
	children, err := childPIDs(postmaster)
	if err != nil {
		f.Resume()
		return nil, fmt.Errorf("pgtest: freeze %s: %w", node.Name, err)
	}
	for _, pid := range append(children, postmaster) {
		f.pids = append(f.pids, pid)
		_ = syscall.Kill(pid, syscall.SIGSTOP) // a child that exited on its own needs no stopping
	}
	return f, nil
}

// Resume sends SIGCONT to every process Freeze stopped and returns at once; pg_auto_failover then demotes the node
// and rejoins it as a standby. Resume is idempotent, so it can also be deferred as a safety net.
func (f *FrozenNode) Resume() {
	f.once.Do(func() {
		for _, pid := range f.pids {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	})
}

// Rejoin resumes the node and returns once the monitor reports it the healthy standby of the new primary and the
// cluster is stable, waiting at most three minutes.
func (f *FrozenNode) Rejoin(ctx context.Context) error {
	f.Resume()
	_, err := f.h.waitStable(ctx, f.h.other(f.HANode).Name)
	return err
}

// postmasterPID reads the first line of the data directory's postmaster.pid.
func postmasterPID(pgdata string) (int, error) {
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("postmaster.pid: bad pid %q", line)
	}
	return pid, nil
}

// childPIDs lists the processes whose parent is ppid, from /proc.
func childPIDs(ppid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parent, err := parentPID(pid); err == nil && parent == ppid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// parentPID reads field 4 of /proc/<pid>/stat; the command name before it is in parentheses and may hold spaces
// and parentheses of its own, so the fields are counted from the last ')'.
func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, errors.New("malformed stat")
	}
	return strconv.Atoi(fields[1])
}

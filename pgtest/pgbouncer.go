package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoPgbouncer is returned by StartPgbouncer when the pgbouncer binary cannot be found.
var ErrNoPgbouncer = errors.New("pgtest: pgbouncer not found (install with: apt-get install -y pgbouncer)")

// A Pgbouncer is a pgbouncer process in transaction pooling mode in front of a [Cluster], listening on a
// loopback port. It is safe for concurrent use; Stop ends it.
type Pgbouncer struct {
	dir        string
	port       int
	cmd        *exec.Cmd
	exited     chan struct{} // closed when the process has exited
	watchdog   *watchdog
	preparable bool

	stopOnce sync.Once
	stopErr  error
}

const pgbouncerReadyTimeout = 10 * time.Second

// StartPgbouncer starts pgbouncer in front of c with pool_mode=transaction, auth_type=trust,
// max_client_conn=1000 and default_pool_size=20, on a free loopback port, as the server OS user. Any
// database and role of c is reachable through it (roles not in its user list are looked up with auth_user). max_prepared_statements=200 is set when the installed pgbouncer
// supports it (1.21+, see [Pgbouncer.PreparedStatements]). It returns an error for which
// errors.Is(err, ErrNoPgbouncer) is true when pgbouncer is not installed, and one matching ErrExternal for a
// DATABASE_URL cluster.
func (c *Cluster) StartPgbouncer(ctx context.Context) (*Pgbouncer, error) {
	if c.external != "" {
		return nil, fmt.Errorf("%w: StartPgbouncer", ErrExternal)
	}
	if c.stopped.Load() {
		return nil, ErrStopped
	}
	bin, err := pgbouncerBinary()
	if err != nil {
		return nil, err
	}
	dir, err := newServerDir(c.cred)
	if err != nil {
		return nil, err
	}
	p := &Pgbouncer{dir: dir, preparable: supportsPreparedStatements(ctx, bin)}
	if err := p.startOnFreePort(ctx, bin, c); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

func pgbouncerBinary() (string, error) {
	if path, err := exec.LookPath("pgbouncer"); err == nil {
		return path, nil
	}
	if isExecutable("/usr/sbin/pgbouncer") {
		return "/usr/sbin/pgbouncer", nil
	}
	return "", ErrNoPgbouncer
}

var pgbouncerVersion = regexp.MustCompile(`PgBouncer (\d+)\.(\d+)`)

// supportsPreparedStatements reports whether bin is pgbouncer 1.21 or later, the first to track protocol
// prepared statements in transaction mode; older versions reject max_prepared_statements.
func supportsPreparedStatements(ctx context.Context, bin string) bool {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	m := pgbouncerVersion.FindSubmatch(out)
	if err != nil || m == nil {
		return false
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return major > 1 || (major == 1 && minor >= 21)
}

// startOnFreePort starts pgbouncer, retrying with a new port if the chosen one was taken meanwhile.
func (p *Pgbouncer) startOnFreePort(ctx context.Context, bin string, c *Cluster) error {
	for attempt := 1; ; attempt++ {
		err := p.startOnce(ctx, bin, c)
		if err == nil || attempt == startAttempts || !strings.Contains(err.Error(), "in use") {
			return err
		}
	}
}

func (p *Pgbouncer) startOnce(ctx context.Context, bin string, c *Cluster) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	if err := p.writeConfig(port, c); err != nil {
		return err
	}
	logFile, err := os.Create(p.logFile())
	if err != nil {
		return fmt.Errorf("pgtest: create pgbouncer log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd := serverCommand(context.Background(), c.cred, p.dir, bin, p.configFile())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start pgbouncer: %w", err)
	}
	p.cmd, p.port, p.exited = cmd, port, make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.exited) }()
	p.watchdog, err = startWatchdog(p.dir, c.cred, killProcessScript, strconv.Itoa(cmd.Process.Pid), p.dir)
	if err == nil {
		err = p.waitReady(ctx)
	}
	if err != nil {
		p.kill()
	}
	return err
}

// waitReady waits, bounded, until pgbouncer accepts TCP connections, failing early if it exits.
func (p *Pgbouncer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pgbouncerReadyTimeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
	for {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-p.exited:
			return fmt.Errorf("pgtest: pgbouncer exited:\n%s", logTail(p.logFile(), 20))
		case <-ctx.Done():
			return fmt.Errorf("pgtest: pgbouncer not ready: %w\n%s", ctx.Err(), logTail(p.logFile(), 20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *Pgbouncer) configFile() string { return filepath.Join(p.dir, "pgbouncer.ini") }
func (p *Pgbouncer) logFile() string    { return filepath.Join(p.dir, "pgbouncer.log") }

// writeConfig writes pgbouncer.ini and the user list trust authentication still consults. The "*" entry
// routes every database name to c, so databases created later need no reconfiguration.
func (p *Pgbouncer) writeConfig(port int, c *Cluster) error {
	userlist := filepath.Join(p.dir, "userlist.txt")
	lines := []string{
		"[databases]",
		fmt.Sprintf("* = host=127.0.0.1 port=%d", c.port),
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		fmt.Sprintf("listen_port = %d", port),
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + userlist,
		"auth_user = " + serverUser,
		"admin_users = " + serverUser,
		"pool_mode = transaction",
		"max_client_conn = 1000",
		"default_pool_size = 20",
		"ignore_startup_parameters = extra_float_digits",
	}
	if p.preparable {
		lines = append(lines, "max_prepared_statements = 200")
	}
	err := writeFile(userlist, fmt.Sprintf("%q \"\"\n", serverUser), c.cred)
	if err != nil {
		return err
	}
	return writeFile(p.configFile(), strings.Join(lines, "\n")+"\n", c.cred)
}

// writeFile writes a file readable by the server user.
func writeFile(path, content string, cred *syscall.Credential) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("pgtest: write %s: %w", path, err)
	}
	return chownTo(path, cred)
}

// ConnString returns a connection string for database dbname through pgbouncer. In transaction mode
// session state (SET, advisory locks, LISTEN) does not survive between transactions, and unless
// [Pgbouncer.PreparedStatements] reports true, pgx must use a simple or exec query mode.
func (p *Pgbouncer) ConnString(dbname string) string {
	return loopbackURL(p.port, dbname)
}

// PreparedStatements reports whether this pgbouncer tracks protocol-level prepared statements
// (max_prepared_statements, pgbouncer 1.21+), so pgx's default statement cache works through it.
func (p *Pgbouncer) PreparedStatements() bool { return p.preparable }

// Stop kills pgbouncer and removes its directory. Stop is idempotent.
func (p *Pgbouncer) Stop() error {
	p.stopOnce.Do(func() {
		p.kill()
		if err := os.RemoveAll(p.dir); err != nil {
			p.stopErr = fmt.Errorf("pgtest: remove %s: %w", p.dir, err)
		}
	})
	return p.stopErr
}

// kill ends the process at once: it is throwaway, and a graceful shutdown would wait for clients.
func (p *Pgbouncer) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.watchdog.dismiss()
	p.watchdog = nil
}

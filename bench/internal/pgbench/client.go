package pgbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNoPgbench is wrapped by the error For returns when no pgbench program is installed.
var ErrNoPgbench = errors.New("pgbench: no pgbench program found (apt-get install -y postgresql)")

// Client runs pgbench against one database. A Client is a plain value, safe to copy and to use from several
// goroutines, though two pgbench runs at once measure each other.
type Client struct {
	Bin      string // the pgbench program
	ConnInfo string // libpq connection string of the database, without the password
	Password string // passed in PGPASSWORD: a command line is readable by every local user (ps)
}

// For returns a Client for db's database, with the pgbench of db's server version if there is one.
func For(ctx context.Context, db *pgxpool.Pool) (Client, error) {
	var versionNum int
	if err := db.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&versionNum); err != nil {
		return Client{}, fmt.Errorf("pgbench: server version: %w", err)
	}
	bin, err := find(versionNum / 10000)
	if err != nil {
		return Client{}, err
	}
	cfg := db.Config().ConnConfig.Config
	return Client{Bin: bin, ConnInfo: ConnInfo(cfg), Password: cfg.Password}, nil
}

func find(major int) (string, error) {
	candidates := []string{fmt.Sprintf("/usr/lib/postgresql/%d/bin/pgbench", major)}
	if path, err := exec.LookPath("pgbench"); err == nil {
		candidates = append(candidates, path)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return debianVersion(b) - debianVersion(a) })
	for _, dir := range dirs {
		candidates = append(candidates, filepath.Join(dir, "pgbench"))
	}
	for _, path := range candidates {
		if info, err := os.Stat(path); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", ErrNoPgbench
}

// debianVersion is the major version in /usr/lib/postgresql/<version>/bin; unparsable ones sort last.
func debianVersion(dir string) int {
	v, err := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	if err != nil {
		return -1
	}
	return v
}

// ConnInfo returns a libpq keyword/value connection string for c's first host, without c's password (see Client). TLS is required when c uses it with no
// way around it, preferred when c falls back to the same server without it (pgconn's sslmode=prefer), and disabled
// otherwise.
func ConnInfo(c pgconn.Config) string {
	sslmode := "disable"
	if c.TLSConfig != nil {
		sslmode = "require"
		for _, f := range c.Fallbacks {
			if f.TLSConfig == nil && f.Host == c.Host && f.Port == c.Port {
				sslmode = "prefer"
			}
		}
	}
	parts := []string{
		"host=" + quote(c.Host), "port=" + strconv.Itoa(int(c.Port)), "user=" + quote(c.User),
		"dbname=" + quote(c.Database), "sslmode=" + sslmode,
	}
	return strings.Join(parts, " ")
}

// quote writes a libpq connection string value in single quotes, with backslashes and quotes escaped.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Init creates and fills pgbench's tables at scale (pgbench -i -s scale): 100,000 accounts, 10 tellers and one
// branch per unit of scale, and an empty history. Existing pgbench tables are dropped first.
func (c Client) Init(ctx context.Context, scale int) error {
	_, err := c.command(ctx, "", "-i", "-q", "-s", strconv.Itoa(scale))
	return err
}

// command runs pgbench with args and the connection string, in dir if not empty, and returns its standard output.
func (c Client) command(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.Bin, append(args, c.ConnInfo)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), `PGOPTIONS=-c default_transaction_isolation=read\ committed`)
	if c.Password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+c.Password)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("pgbench %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.String(), 5))
	}
	return stdout.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

package pgtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// databaseURLEnv names the environment variable selecting an existing server instead of an embedded one.
const databaseURLEnv = "DATABASE_URL"

// startExternal wraps the DATABASE_URL server after checking it is local and reachable.
func startExternal(ctx context.Context, connString string) (*Cluster, error) {
	if err := checkLoopback(connString); err != nil {
		return nil, err
	}
	c := &Cluster{external: connString}
	if err := c.openAdmin(ctx, connString); err != nil {
		return nil, err
	}
	return c, nil
}

// checkLoopback returns an error for which errors.Is(err, ErrNotLoopback) is true unless every host in
// connString (including multi-host fallbacks) is a loopback address, localhost or a unix socket directory.
// It resolves no names and opens no connections.
func checkLoopback(connString string) error {
	config, err := pgconn.ParseConfig(connString)
	if err != nil {
		return fmt.Errorf("pgtest: parse %s: %w", databaseURLEnv, err)
	}
	hosts := []string{config.Host}
	for _, fb := range config.Fallbacks {
		hosts = append(hosts, fb.Host)
	}
	for _, host := range hosts {
		if !isLoopbackHost(host) {
			return fmt.Errorf("%w: %q", ErrNotLoopback, host)
		}
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.HasPrefix(host, "/") || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// withDatabase returns connString pointing at database dbname instead, in the same syntax (URL or
// keyword/value) so every other setting of DATABASE_URL is kept.
func withDatabase(connString, dbname string) string {
	scheme, rest, isURL := strings.Cut(connString, "://")
	if !isURL {
		// In keyword/value strings a later keyword overrides an earlier one.
		return connString + " dbname=" + quoteKeywordValue(dbname)
	}
	// Split by hand: url.Parse rejects multi-host URLs such as postgres://h1:5432,h2:5433/db.
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	query := ""
	if i := strings.IndexByte(tail, '?'); i >= 0 {
		query = withoutDatabaseParams(tail[i+1:])
	}
	return scheme + "://" + authority + "/" + url.PathEscape(dbname) + query
}

// withoutDatabaseParams returns a URL's query, with its "?", without dbname and database parameters, which pgconn
// lets override the path: left in, they would send every connection to the database they name.
func withoutDatabaseParams(query string) string {
	var kept []string
	for _, p := range strings.Split(query, "&") {
		key, _, _ := strings.Cut(p, "=")
		if p == "" || key == "dbname" || key == "database" {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return ""
	}
	return "?" + strings.Join(kept, "&")
}

func quoteKeywordValue(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

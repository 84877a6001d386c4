// Package standby tells tx.Run which connections reach a hot standby, where SERIALIZABLE is refused and read-only
// work at the default isolation runs REPEATABLE READ instead.
package standby

import "github.com/jackc/pgx/v5"

const key = "pgxact.standby"

// Mark records that conn was lent from a hot standby (package replica does, for every replica connection it lends).
// It is needed where the server's own report does not reach the client: pgbouncer passes in_hot_standby on to no one.
func Mark(conn *pgx.Conn) { conn.PgConn().CustomData()[key] = true }

// Is reports whether conn reaches a hot standby: the server says so (PostgreSQL 14 and later report in_hot_standby
// to the client, unasked, and again when it changes), or conn was marked. A mark outlives a promotion of its server;
// read-only work there then runs REPEATABLE READ, which a primary accepts.
func Is(conn *pgx.Conn) bool {
	pc := conn.PgConn()
	if pc.ParameterStatus("in_hot_standby") == "on" {
		return true
	}
	marked, _ := pc.CustomData()[key].(bool)
	return marked
}

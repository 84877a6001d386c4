package tx

import (
	"cmp"

	"github.com/jackc/pgx/v5"

	"github.com/pgxact/pgxact/internal/standby"
	"github.com/pgxact/pgxact/retry"
)

// Option configures Run. The zero configuration is a SERIALIZABLE, read-write transaction retried by retry.Default()
// and observed by nobody.
type Option func(*config)

type config struct {
	iso        pgx.TxIsoLevel
	isoSet     bool // iso was asked for (WithIsolation with a level), not left at the default
	readOnly   bool
	deferrable bool
	fuse       bool
	policy     retry.Policy
	observer   Observer
	err        error
}

// WithIsolation sets the isolation level (default pgx.Serializable: correct by default, at a cost measured in
// single-digit percent by Ports & Grittner, VLDB 2012). The empty level means the default; any level other than the
// four PostgreSQL knows is invalid input.
//
// The default has one exception: a ReadOnly transaction (not Deferrable) that lands on a hot standby — a replica a
// replica.Router chose, or a pool on one — runs REPEATABLE READ there, because a standby refuses SERIALIZABLE. Its
// reads see one consistent snapshot of the primary's past; what they give up is SERIALIZABLE's protection against the
// rare read-only anomaly. Ask for pgx.Serializable by name to keep it: a Router then sends the transaction to the
// primary.
func WithIsolation(level pgx.TxIsoLevel) Option {
	return func(c *config) {
		switch level {
		case "":
			c.iso, c.isoSet = pgx.Serializable, false
		case pgx.Serializable, pgx.RepeatableRead, pgx.ReadCommitted, pgx.ReadUncommitted:
			c.iso, c.isoSet = level, true
		default:
			c.err = invalid("isolation level %q", level)
		}
	}
}

// ReadOnly makes the transaction READ ONLY. Read-only transactions may be routed to replicas (at REPEATABLE READ
// unless an isolation level is asked for: see WithIsolation), and their COMMIT is
// never ambiguous: they cannot have written anything. A notification (NOTIFY, pg_notify), which PostgreSQL allows in
// them, is the exception: a read-only transaction whose SQL mentions one is resolved like one that writes. A standby
// refuses notifications (they cannot be sent during recovery), and a router cannot see the SQL before it picks a
// server: give such work tx.WithIsolation(pgx.Serializable), which keeps it on the primary, or leave ReadOnly out.
func ReadOnly() Option { return func(c *config) { c.readOnly = true } }

// Deferrable makes the transaction DEFERRABLE: a SERIALIZABLE READ ONLY transaction then waits for a snapshot that
// cannot cause or suffer serialization failures. PostgreSQL ignores it otherwise.
func Deferrable() Option { return func(c *config) { c.deferrable = true } }

// WithPolicy sets the retry policy for whole-transaction restarts (default retry.Default()). retry.Never() turns
// retries off.
func WithPolicy(p retry.Policy) Option {
	return func(c *config) {
		if err := p.Validate(); err != nil {
			c.err = invalid("retry policy: %w", err)
			return
		}
		c.policy = p
	}
}

// WithObserver reports every attempt and run to o (see SlogObserver). A nil o is invalid input.
func WithObserver(o Observer) Option {
	return func(c *config) {
		if o == nil || nilPointer(o) { // a typed nil would panic inside Run, at its first event
			c.err = invalid("nil Observer")
			return
		}
		c.observer = o
	}
}

// defaultPolicy is shared by every Run without WithPolicy, so its retry budget spans them all.
var defaultPolicy = retry.Default()

// apply sets c to the defaults, then applies opts in order, and returns the first one's error. It goes on past an
// invalid option, so that an observer given after it still hears of the run.
func (c *config) apply(opts []Option) error {
	*c = config{iso: pgx.Serializable, policy: defaultPolicy, observer: nopObserver{}}
	var first error
	for _, o := range opts {
		if o == nil {
			first = cmp.Or(first, invalid("nil Option"))
			continue
		}
		o(c)
		first, c.err = cmp.Or(first, c.err), nil
	}
	return first
}

func (c config) txOptions() pgx.TxOptions {
	o := pgx.TxOptions{IsoLevel: c.iso, AccessMode: pgx.ReadWrite}
	if c.readOnly {
		o.AccessMode = pgx.ReadOnly
	}
	if c.deferrable {
		o.DeferrableMode = pgx.Deferrable
	}
	return o
}

// acquireOptions are the options an Acquirer chooses a connection by. A read-only transaction left at the default
// isolation, and not DEFERRABLE, names none (IsoLevel ""): it can run on a hot standby, at REPEATABLE READ (see
// WithIsolation and beginSQL).
func (c config) acquireOptions() pgx.TxOptions {
	o := c.txOptions()
	if c.standbyable() {
		o.IsoLevel = ""
	}
	return o
}

// standbyable reports whether the transaction runs REPEATABLE READ on a hot standby rather than fail there.
func (c config) standbyable() bool { return c.readOnly && !c.isoSet && !c.deferrable }

// beginSQL spells BEGIN for a transaction on conn, from validated options only; no caller text reaches it. Whether
// conn is a hot standby costs no round trip (standby.Is). The spellings are made once, not per Run: a string built
// per transaction is an allocation on the hot path.
func (c config) beginSQL(conn *pgx.Conn) string {
	iso := c.iso
	if c.standbyable() && conn != nil && standby.Is(conn) {
		iso = pgx.RepeatableRead
	}
	if sql, ok := beginSQLs[beginKey{iso, c.readOnly, c.deferrable}]; ok {
		return sql
	}
	o := c.txOptions()
	o.IsoLevel = iso
	return spellBegin(o)
}

type beginKey struct {
	iso                  pgx.TxIsoLevel
	readOnly, deferrable bool
}

var beginSQLs = func() map[beginKey]string {
	m := map[beginKey]string{}
	for _, iso := range []pgx.TxIsoLevel{pgx.Serializable, pgx.RepeatableRead, pgx.ReadCommitted, pgx.ReadUncommitted} {
		for _, ro := range []bool{false, true} {
			for _, def := range []bool{false, true} {
				c := config{iso: iso, readOnly: ro, deferrable: def}
				m[beginKey{iso, ro, def}] = spellBegin(c.txOptions())
			}
		}
	}
	return m
}()

func spellBegin(o pgx.TxOptions) string {
	sql := "BEGIN ISOLATION LEVEL " + string(o.IsoLevel) + " " + string(o.AccessMode)
	if o.DeferrableMode == pgx.Deferrable {
		sql += " DEFERRABLE"
	}
	return sql
}

package txtest

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// commitFaultSetup gives the session a temporary table whose rows fail COMMIT: a DEFERRABLE INITIALLY DEFERRED
// constraint trigger fires at COMMIT and raises 40001. A temporary table is session-local, invisible to the
// application, and writable even in READ ONLY transactions.
const commitFaultSetup = `DO $$ BEGIN
	IF to_regclass('pg_temp.pgxact_txtest_fault') IS NULL THEN
		CREATE TEMP TABLE pgxact_txtest_fault (armed_at timestamptz NOT NULL DEFAULT clock_timestamp());
		CREATE FUNCTION pg_temp.pgxact_txtest_fail() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
			RAISE EXCEPTION 'txtest: injected serialization failure at commit' USING ERRCODE = '40001';
		END $f$;
		CREATE CONSTRAINT TRIGGER pgxact_txtest_fail AFTER INSERT ON pg_temp.pgxact_txtest_fault
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.pgxact_txtest_fail();
	END IF;
END $$`

// armCommit begins the transaction on conn and queues the deferred trigger, so that the COMMIT the runner sends later
// is answered with ERROR 40001 and the server rolls everything back.
//
// The set-up runs inside the transaction, in one message with BEGIN: under a transaction pooler (pgbouncer) a
// statement sent outside a transaction may run on another server connection than the BEGIN after it, and its
// temporary table with it (seen in CI: 42P01 at the INSERT). So the transaction begins read-write (CREATE is refused
// in a read-only one) and is made READ ONLY after the set-up, which PostgreSQL allows after queries (the other way
// round it would not). The set-up is rolled back with the failed COMMIT and made again at the next injected failure.
func armCommit(ctx context.Context, conn *pgx.Conn, opts pgx.TxOptions) error {
	if _, err := beginSQL(opts); err != nil {
		return err
	}
	if opts.DeferrableMode == pgx.Deferrable {
		// The set-up takes a snapshot, after which PostgreSQL refuses the runner's BEGIN ... DEFERRABLE.
		return fmt.Errorf("%w: AtCommit with a DEFERRABLE transaction", ErrUnsupported)
	}
	readOnly := opts.AccessMode == pgx.ReadOnly
	opts.AccessMode = pgx.ReadWrite
	begin, _ := beginSQL(opts) // valid: only the access mode changed, to a valid one
	// Fixed text only: begin is spelled from validated options.
	sql := begin + "; " + commitFaultSetup + "; "
	if readOnly {
		sql += "SET TRANSACTION READ ONLY; "
	}
	if _, err := conn.Exec(ctx, sql+"INSERT INTO pg_temp.pgxact_txtest_fault DEFAULT VALUES"); err != nil {
		return fmt.Errorf("txtest: arming the commit fault: %w", err)
	}
	return nil
}

// ssiTable holds the rows that the doomed transaction and its two helpers conflict on. It must be an ordinary table:
// PostgreSQL's serializable snapshot isolation ignores temporary ones.
const ssiTable = `CREATE TABLE IF NOT EXISTS pgxact_txtest_ssi (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	v  int NOT NULL DEFAULT 0)`

// doom makes the transaction on conn a genuine victim of serializable snapshot isolation before the runner gets it.
// Two helper transactions on their own connections build the "dangerous structure" PostgreSQL watches for:
//
//	in --rw--> doomed --rw--> out      (out commits first)
//
// doomed reads row a and writes row b; in reads row b (missing doomed's write); out writes row a and commits. At out's
// COMMIT the server finds doomed to be the pivot of the structure and marks it for death: its next read or write of
// an ordinary table, or its COMMIT, fails with 40001 "could not serialize access due to read/write dependencies among
// transactions". The rows are fresh for every fault, so no row lock is ever waited for.
func (i *Injector) doom(ctx context.Context, conn *pgx.Conn, opts pgx.TxOptions) (err error) {
	begin, err := beginSQL(opts)
	if err != nil {
		return err
	}
	if (opts.IsoLevel != "" && opts.IsoLevel != pgx.Serializable) || opts.AccessMode == pgx.ReadOnly ||
		opts.DeferrableMode == pgx.Deferrable {
		return fmt.Errorf("%w: InBody needs a SERIALIZABLE READ WRITE transaction, not DEFERRABLE", ErrUnsupported)
	}
	in, out, err := i.helpers(ctx, conn)
	if err != nil {
		return err
	}
	defer closeAll(in, out)
	var a, b int64
	if err := out.QueryRow(ctx, `WITH r AS (INSERT INTO pgxact_txtest_ssi (v) VALUES (0), (0) RETURNING id)
		SELECT min(id), max(id) FROM r`).Scan(&a, &b); err != nil {
		return fmt.Errorf("txtest: making rows to conflict on: %w", err)
	}
	steps := []struct {
		conn  *pgx.Conn
		stmts []string
		args  [][]any
	}{
		{conn, []string{begin, "SELECT v FROM pgxact_txtest_ssi WHERE id = $1", "UPDATE pgxact_txtest_ssi SET v = v + 1 WHERE id = $1"}, [][]any{nil, {a}, {b}}},
		{in, []string{"BEGIN ISOLATION LEVEL SERIALIZABLE", "SELECT v FROM pgxact_txtest_ssi WHERE id = $1"}, [][]any{nil, {b}}},
		{out, []string{"BEGIN ISOLATION LEVEL SERIALIZABLE", "UPDATE pgxact_txtest_ssi SET v = v + 1 WHERE id = $1", "COMMIT"}, [][]any{nil, {a}, nil}},
	}
	for _, s := range steps {
		if err := sendAll(ctx, s.conn, s.stmts, s.args); err != nil {
			return fmt.Errorf("txtest: building the serialization conflict: %w", err)
		}
	}
	// doomed stays doomed once out has committed; in has done its part.
	if _, err := in.Exec(ctx, "ROLLBACK"); err != nil {
		return fmt.Errorf("txtest: ending the helper transaction: %w", err)
	}
	return nil
}

// helpers connects the two helper sessions to conn's server, outside any pool so that a small pool cannot starve
// them, and makes sure the conflict table exists.
func (i *Injector) helpers(ctx context.Context, conn *pgx.Conn) (in, out *pgx.Conn, err error) {
	cfg := conn.Config() // the server conn is on, whichever db lent it
	if in, err = pgx.ConnectConfig(ctx, cfg); err != nil {
		return nil, nil, fmt.Errorf("txtest: helper connection: %w", err)
	}
	if out, err = pgx.ConnectConfig(ctx, cfg); err != nil {
		closeAll(in)
		return nil, nil, fmt.Errorf("txtest: helper connection: %w", err)
	}
	if !i.ssiReady {
		if _, err := out.Exec(ctx, ssiTable); err != nil {
			closeAll(in, out)
			return nil, nil, fmt.Errorf("txtest: creating pgxact_txtest_ssi: %w", err)
		}
		i.ssiReady = true
	}
	return in, out, nil
}

// sendAll runs stmts in one round trip.
func sendAll(ctx context.Context, conn *pgx.Conn, stmts []string, args [][]any) error {
	b := &pgx.Batch{}
	for k, sql := range stmts {
		b.Queue(sql, args[k]...)
	}
	return conn.SendBatch(ctx, b).Close()
}

func closeAll(conns ...*pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range conns {
		_ = c.Close(ctx)
	}
}

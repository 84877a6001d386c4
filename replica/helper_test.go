package replica_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/replica"
	"github.com/pgxact/pgxact/tx"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pair is a fresh database on the shared cluster and a streaming hot standby of the cluster, private to one test so
// that it may pause replay or change the standby's settings.
type pair struct {
	dbname  string
	primary *pgxpool.Pool
	standby *pgtest.Cluster
	replica *pgxpool.Pool
}

// newPair creates the database with an items table, then the standby, which brings the table along.
func newPair(t *testing.T) *pair {
	t.Helper()
	cluster, err := pgtest.Shared()
	require.NoError(t, err)
	connString := pgtest.ConnString(t)
	config, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	p := &pair{dbname: config.Database, primary: newPool(t, connString, nil)}
	_, err = p.primary.Exec(ctxT(t), "CREATE TABLE items (id int PRIMARY KEY)")
	require.NoError(t, err)
	p.standby, err = cluster.StartReplica(ctxT(t))
	if errors.Is(err, pgtest.ErrExternal) {
		t.Fatal("replica tests need an embedded cluster: unset DATABASE_URL")
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.standby.Stop()) })
	p.replica = newPool(t, p.standby.ConnString(p.dbname), nil)
	return p
}

// newPool opens a pool on connString, closed at cleanup; edit, if not nil, adjusts the configuration first.
func newPool(t *testing.T, connString string, edit func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	config, err := pgxpool.ParseConfig(connString)
	require.NoError(t, err)
	if edit != nil {
		edit(config)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), config)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func newRouter(t *testing.T, primary *pgxpool.Pool, replicas []*pgxpool.Pool, opts ...replica.Option) *replica.Router {
	t.Helper()
	r, err := replica.New(primary, replicas, opts...)
	require.NoError(t, err)
	return r
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readOnly are the options of a transaction a replica can run. PostgreSQL refuses SERIALIZABLE on a standby; tx.Run's
// default for read-only work there is REPEATABLE READ, named here all the same.
var readOnly = []tx.Option{tx.ReadOnly(), tx.WithIsolation(pgx.RepeatableRead)}

// sighting is what a read saw, and where it ran.
type sighting struct {
	Found     bool // the item exists
	OnStandby bool // pg_is_in_recovery() where the read ran
}

func lookFor(id int) tx.Tx[sighting] {
	return tx.QueryOne("SELECT EXISTS (SELECT FROM items WHERE id = $1), pg_is_in_recovery()",
		pgx.RowToStructByPos[sighting], id)
}

func insert(id int) tx.Tx[struct{}] {
	return tx.Map(tx.Exec("INSERT INTO items VALUES ($1)", id), func(pgconn.CommandTag) struct{} { return struct{}{} })
}

// where reports whether a transaction through db with opts ran on a standby.
func where(t *testing.T, db tx.DB, opts ...tx.Option) bool {
	t.Helper()
	onStandby, err := tx.Run(ctxT(t), db, tx.QueryOne("SELECT pg_is_in_recovery()", pgx.RowTo[bool]), opts...)
	require.NoError(t, err)
	return onStandby
}

// pauseReplay stops the standby from applying WAL until resumeReplay (or cleanup). Records that arrive after the
// pause request are received but not applied, which makes replication lag deterministic.
func (p *pair) pauseReplay(t *testing.T) {
	t.Helper()
	admin := newPool(t, p.standby.ConnString(p.dbname), func(c *pgxpool.Config) { c.MaxConns = 1 })
	_, err := admin.Exec(ctxT(t), "SELECT pg_wal_replay_pause()")
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "SELECT pg_wal_replay_resume()") })
}

func (p *pair) resumeReplay(t *testing.T) {
	t.Helper()
	_, err := p.replica.Exec(ctxT(t), "SELECT pg_wal_replay_resume()")
	require.NoError(t, err)
}

// waitForReplay waits, bounded, until the standby has applied everything the primary has written so far.
func (p *pair) waitForReplay(t *testing.T) {
	t.Helper()
	var target string
	require.NoError(t, p.primary.QueryRow(ctxT(t), "SELECT pg_current_wal_insert_lsn()::text").Scan(&target))
	require.Eventually(t, func() bool {
		var done bool
		err := p.replica.QueryRow(ctxT(t), "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target).Scan(&done)
		return err == nil && done
	}, 10*time.Second, 5*time.Millisecond, "the standby did not replay up to %s", target)
}

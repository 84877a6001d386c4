package jepsen_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/jepsen"
	"github.com/pgxact/pgxact/tx"
)

var roleCounter atomic.Int64

// newTenantRole creates a login role without superuser or BYPASSRLS rights, dropped at cleanup. Roles belong to
// the cluster, not the database, so the name carries the pid to stay unique among test binaries.
func (d db) newTenantRole(t *testing.T) string {
	t.Helper()
	role := fmt.Sprintf("jepsen_tenant_%d_%d", os.Getpid(), roleCounter.Add(1))
	ident := pgx.Identifier{role}.Sanitize()
	ctx := context.Background()
	_, err := d.admin.Exec(ctx, "CREATE ROLE "+ident+" LOGIN NOSUPERUSER NOBYPASSRLS")
	require.NoError(t, err)
	t.Cleanup(func() {
		// Before the database is dropped (cleanups run last-in first-out): the grants live in it.
		_, err := d.admin.Exec(context.Background(), "DROP OWNED BY "+ident+"; DROP ROLE "+ident)
		require.NoError(t, err)
	})
	return role
}

const rlsSchema = `
CREATE TABLE docs (id bigint PRIMARY KEY, tenant text NOT NULL, body text NOT NULL);
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON docs
	USING (tenant = current_setting('app.tenant_id', true))
	WITH CHECK (tenant = current_setting('app.tenant_id', true))`

// tenantResult is what one tenant transaction saw.
type tenantResult struct {
	leftover    string          // app.tenant_id at the start, before SetLocal
	tenants     []string        // tenants of the rows the read returned
	foreignEdit int64           // rows of another tenant an UPDATE touched
	foreignAdd  *pgconn.PgError // the refusal of an INSERT for another tenant; nil if it went through
}

// tenantTx works as tenant: checks that nothing is left from the connection's last user, sets the tenant, writes
// a document, reads recent documents, and tries to touch another tenant's rows.
func tenantTx(id int64, tenant, other string) tx.Tx[tenantResult] {
	leftover := tx.QueryOne("SELECT coalesce(current_setting('app.tenant_id', true), '')", pgx.RowTo[string])
	return tx.Bind(leftover, func(left string) tx.Tx[tenantResult] {
		work := tx.Then(tx.SetLocal("app.tenant_id", tenant), tx.Then(
			tx.Exec("INSERT INTO docs (id, tenant, body) VALUES ($1, $2, 'doc')", id, tenant),
			tx.All([]tx.Tx[tenantResult]{
				tx.Map(tx.Query("SELECT tenant FROM docs ORDER BY id DESC LIMIT 20", pgx.RowTo[string]),
					func(ts []string) tenantResult { return tenantResult{tenants: ts} }),
				tx.Map(tx.Exec("UPDATE docs SET body = 'hijacked' WHERE tenant = $1", other),
					func(tag pgconn.CommandTag) tenantResult { return tenantResult{foreignEdit: tag.RowsAffected()} }),
			})))
		return tx.Bind(work, func(rs []tenantResult) tx.Tx[tenantResult] {
			r := tenantResult{leftover: left, tenants: rs[0].tenants, foreignEdit: rs[1].foreignEdit}
			return tx.Map(foreignInsert(-id, other), func(refusal *pgconn.PgError) tenantResult {
				r.foreignAdd = refusal
				return r
			})
		})
	})
}

// foreignInsert tries to write a row for another tenant under a savepoint and yields the server's refusal.
func foreignInsert(id int64, other string) tx.Tx[*pgconn.PgError] {
	insert := tx.Map(tx.Exec("INSERT INTO docs (id, tenant, body) VALUES ($1, $2, 'planted')", id, other),
		func(pgconn.CommandTag) *pgconn.PgError { return nil })
	return tx.Recover(insert, func(err error) tx.Tx[*pgconn.PgError] {
		var pgErr *pgconn.PgError
		if !asPgError(err, &pgErr) {
			return tx.Fail[*pgconn.PgError](err)
		}
		return tx.Pure(pgErr)
	})
}

func TestRowLevelSecurityAcrossPooledConnections(t *testing.T) {
	sc := suiteScale()
	d := newDB(t)
	ctx := testCtx(t, sc.limit+time.Minute)
	role := d.newTenantRole(t)
	_, err := d.admin.Exec(ctx, rlsSchema)
	require.NoError(t, err)
	_, err = d.admin.Exec(ctx, "GRANT SELECT, INSERT, UPDATE ON docs TO "+pgx.Identifier{role}.Sanitize())
	require.NoError(t, err)
	before := jepsen.SnapshotGoroutines()

	cfg := d.poolConfig(t, 4, nil)
	cfg.ConnConfig.User = role // trust authentication on loopback: no password
	pool := newPool(t, cfg)
	var super, bypass bool
	require.NoError(t, pool.QueryRow(ctx, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").Scan(&super, &bypass))
	require.False(t, super || bypass, "the tenant role must be subject to row-level security")

	tenants := []string{"acme", "globex", "initech", "umbrella", "hooli"}
	var leftovers, foreignRows, foreignEdits, foreignAdds, committed atomic.Int64
	errs := newTally()
	loadCtx, stop := context.WithTimeout(ctx, sc.limit)
	defer stop()
	started := time.Now()
	ran := jepsen.RunWorkers(loadCtx, 16, sc.rlsOps, func(ctx context.Context, seq int) {
		tenant, other := tenants[seq%len(tenants)], tenants[(seq+1)%len(tenants)]
		r, err := tx.Run(ctx, pool, tenantTx(int64(seq+1), tenant, other),
			tx.WithIsolation(pgx.ReadCommitted), tx.WithPolicy(suitePolicy()))
		errs.add(err)
		if err != nil {
			return
		}
		committed.Add(1)
		if r.leftover != "" {
			leftovers.Add(1)
		}
		for _, seen := range r.tenants {
			if seen != tenant {
				foreignRows.Add(1)
			}
		}
		foreignEdits.Add(r.foreignEdit)
		if r.foreignAdd == nil || r.foreignAdd.Code != "42501" {
			foreignAdds.Add(1)
		}
	})
	elapsed := time.Since(started)

	var stored, misfiled, hijacked int64
	require.NoError(t, d.admin.QueryRow(ctx, `SELECT count(*),
		count(*) FILTER (WHERE tenant <> ($1::text[])[(id - 1) % 5 + 1] OR id < 0),
		count(*) FILTER (WHERE body <> 'doc') FROM docs`, tenants).Scan(&stored, &misfiled, &hijacked))
	t.Logf("row-level security: %d transactions on %d connections in %v (%.0f/s); leftover settings %d, foreign rows read %d, "+
		"foreign rows updated %d, foreign inserts not refused %d; stored %d, misfiled %d, hijacked %d\noutcomes:%v",
		ran, cfg.MaxConns, elapsed.Round(time.Millisecond), float64(ran)/elapsed.Seconds(), leftovers.Load(), foreignRows.Load(),
		foreignEdits.Load(), foreignAdds.Load(), stored, misfiled, hijacked, errs)
	require.Equal(t, sc.rlsOps, ran)
	require.Equal(t, int64(sc.rlsOps), committed.Load(), "outcomes:%v", errs)
	require.Zero(t, leftovers.Load(), "a transaction began with the previous user's tenant still set")
	require.Zero(t, foreignRows.Load())
	require.Zero(t, foreignEdits.Load())
	require.Zero(t, foreignAdds.Load())
	require.Equal(t, committed.Load(), stored)
	require.Zero(t, misfiled)
	require.Zero(t, hijacked)

	d.requireQuiescent(t, pool)
	pool.Close()
	requireNoLeaks(t, before)
}

package pgtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// haPollInterval is how often waits look at the monitor and the nodes.
const haPollInterval = 100 * time.Millisecond

// Switchover is a planned failover (what pg_autoctl perform switchover does): it waits for the cluster to
// be stable, asks the monitor to promote the standby, and returns once the former standby is primary and
// accepts writes and the former primary is its healthy standby. It waits at most three minutes after the
// cluster is stable. Sessions on the old primary are ended. Transactions committed before the switchover survive,
// but keep clients off the old primary while it runs (a proxy, a pooler's PAUSE): pg_auto_failover 2.0 assigns it
// wait_primary a few milliseconds after draining, which turns synchronous replication off while the standby stops
// replicating to be promoted, and commits it acknowledges until its demote timeout are lost when it rejoins.
func (h *HA) Switchover(ctx context.Context) error {
	old, err := h.waitStable(ctx, "")
	if err != nil {
		return err
	}
	if err := h.performFailover(ctx); err != nil {
		return fmt.Errorf("pgtest: switchover: %w", err)
	}
	_, err = h.waitStable(ctx, h.other(old).Name)
	return err
}

// performFailoverTries bounds the monitor calls of one Switchover.
const performFailoverTries = 5

// performFailover asks the monitor for the failover. The monitor's function updates the node rows that the keepers'
// own calls update every few hundred milliseconds, and now and then the two deadlock: the server then rolls the
// call back (40P01), and asking again is safe.
func (h *HA) performFailover(ctx context.Context) error {
	var err error
	for try := 1; try <= performFailoverTries; try++ {
		_, err = h.monitor.Exec(ctx, "SELECT pgautofailover.perform_failover('default', 0)")
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(try) * haPollInterval):
		}
	}
	return err
}

// CrashPrimary is an unplanned failover: it waits for the cluster to be stable, then kills the primary's
// keeper and postmaster with SIGKILL, as a machine crash would, waits until the monitor has promoted the
// standby and it accepts writes, and restarts the old primary's keeper, which rejoins it as a standby
// (rewinding it with pg_rewind when it had WAL the new primary never saw). It returns once the cluster is
// stable again, at most three minutes for the promotion plus three for the rejoin after the cluster was
// stable, and reports how long after the kill the new primary first accepted a write (measured every
// 100 ms). With asynchronous replication, commits the standby had not received are lost.
func (h *HA) CrashPrimary(ctx context.Context) (downtime time.Duration, err error) {
	old, err := h.waitStable(ctx, "")
	if err != nil {
		return 0, err
	}
	next := h.other(old)
	h.kill(old.Name)
	killed := time.Now()
	err = h.poll(ctx, "promote "+next.Name, func(ctx context.Context) error { return acceptsWrite(ctx, next) })
	downtime = time.Since(killed)
	if err != nil {
		return downtime, err
	}
	if err := h.runKeeper(old); err != nil {
		return downtime, err
	}
	_, err = h.waitStable(ctx, next.Name)
	return downtime, err
}

// Primary returns the node the monitor currently sees as a writable primary (states primary, wait_primary
// or single, reported and assigned). It returns an error while a failover is under way.
func (h *HA) Primary(ctx context.Context) (HANode, error) {
	return h.nodeIn(ctx, "primary", "wait_primary", "single")
}

// Standby returns the node the monitor currently sees as a streaming standby (state secondary, reported
// and assigned). It returns an error while there is none, as during a failover.
func (h *HA) Standby(ctx context.Context) (HANode, error) {
	return h.nodeIn(ctx, "secondary")
}

func (h *HA) nodeIn(ctx context.Context, states ...string) (HANode, error) {
	rows, err := h.nodeStates(ctx)
	if err != nil {
		return HANode{}, err
	}
	for _, r := range rows {
		if r.reported == r.goal && slices.Contains(states, r.reported) {
			return h.node(r.name), nil
		}
	}
	return HANode{}, fmt.Errorf("pgtest: no node in state %s: %s", strings.Join(states, " or "), describe(rows))
}

// haNodeState is one node's row in the monitor's pgautofailover.node table.
type haNodeState struct {
	name, reported, goal string
	healthy              bool
}

func (h *HA) nodeStates(ctx context.Context) ([]haNodeState, error) {
	if h.stopped.Load() {
		return nil, ErrStopped
	}
	rows, err := h.monitor.Query(ctx, `SELECT nodename, reportedstate::text, goalstate::text, health = 1
		FROM pgautofailover.node ORDER BY nodeid`)
	if err != nil {
		return nil, fmt.Errorf("pgtest: monitor: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (s haNodeState, err error) {
		return s, row.Scan(&s.name, &s.reported, &s.goal, &s.healthy)
	})
}

// waitStable waits until the monitor reports one node primary and the other secondary, both healthy and
// both in the state assigned to them, then checks with the nodes themselves (see replicating): the primary streams
// to the standby, synchronously when the cluster is, and takes writes, and the standby has received its WAL. An
// empty want accepts either node as primary. It returns the primary.
func (h *HA) waitStable(ctx context.Context, want string) (primary HANode, err error) {
	err = h.poll(ctx, "wait for a stable primary and standby", func(ctx context.Context) error {
		primary, err = h.stable(ctx, want)
		return err
	})
	return primary, err
}

func (h *HA) stable(ctx context.Context, want string) (HANode, error) {
	rows, err := h.nodeStates(ctx)
	if err != nil {
		return HANode{}, err
	}
	var primary string
	for _, r := range rows {
		if r.reported != r.goal || !r.healthy || (r.reported != "primary" && r.reported != "secondary") {
			return HANode{}, fmt.Errorf("not stable: %s", describe(rows))
		}
		if r.reported == "primary" {
			primary = r.name
		}
	}
	if len(rows) != 2 || primary == "" || (want != "" && primary != want) {
		return HANode{}, fmt.Errorf("not stable with primary %q: %s", want, describe(rows))
	}
	p := h.node(primary)
	return p, h.replicating(ctx, p, h.other(p))
}

// replicating checks with the servers what the monitor's states only claim. The monitor moves a rejoining node to
// secondary once the WAL position it last reported is within pgautofailover.enable_sync_wal_log_threshold (16 MB) of
// the primary's, before it streams (every partition's events here show it), and a switchover promotes a standby
// within pgautofailover.promote_wal_log_threshold of the primary. A CI run lost 2,355 acknowledged transfers with
// synchronous replication when a switchover promoted a standby that lacked the primary's last seconds of commits,
// right after the monitor had called the cluster stable. So stable also requires, of the servers themselves: the
// primary streams to the standby (synchronously, when the cluster is), the primary assigns a transaction id, and
// the standby is in recovery and has received the primary's WAL up to where it was before.
func (h *HA) replicating(ctx context.Context, primary, standby HANode) error {
	var lsn string
	var streaming, synchronous int
	err := queryNode(ctx, primary, `SELECT pg_current_wal_lsn()::text,
		count(*) FILTER (WHERE state = 'streaming'),
		count(*) FILTER (WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum'))
		FROM pg_stat_replication`, nil, &lsn, &streaming, &synchronous)
	if err != nil {
		return err
	}
	if streaming == 0 || (h.synchronous && synchronous == 0) {
		return fmt.Errorf("pgtest: %s streams to no standby (synchronous: %d)", primary.Name, synchronous)
	}
	if err := acceptsWrite(ctx, primary); err != nil {
		return err
	}
	var recovering, received bool
	err = queryNode(ctx, standby, `SELECT pg_is_in_recovery(),
		coalesce(pg_last_wal_receive_lsn() >= $1::text::pg_lsn, false)`, []any{lsn}, &recovering, &received)
	if err != nil {
		return err
	}
	if !recovering || !received {
		return fmt.Errorf("pgtest: %s is not a standby that has received %s's WAL up to %s (in recovery: %t)",
			standby.Name, primary.Name, lsn, recovering)
	}
	return nil
}

func describe(rows []haNodeState) string {
	var parts []string
	for _, r := range rows {
		part := fmt.Sprintf("%s %s (assigned %s)", r.name, r.reported, r.goal)
		if !r.healthy {
			part += " unhealthy"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// acceptsWrite checks that node commits a transaction with a transaction id: a standby refuses to assign one. The
// transaction writes nothing before its commit record, so its commit is asynchronous and does not wait for a
// synchronous standby: it tells a primary, not a replicating one (replicating checks that).
func acceptsWrite(ctx context.Context, node HANode) error {
	return queryNode(ctx, node, "SELECT txid_current()", nil, new(int64))
}

// queryNode runs a one-row query with args on node in a new connection, bounded to a few seconds.
func queryNode(ctx context.Context, node HANode, sql string, args []any, dest ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, node.ConnString("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: %s: %w", node.Name, err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		return fmt.Errorf("pgtest: %s: %w", node.Name, err)
	}
	return nil
}

// poll calls check every haPollInterval until it returns nil. It gives up after haChangeTimeout, when ctx
// ends, or when a pg_autoctl process that should be running has exited, and then says what check
// reported last. It returns ErrStopped at once if the cluster is stopped meanwhile.
func (h *HA) poll(ctx context.Context, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, haChangeTimeout)
	defer cancel()
	for {
		last := check(ctx)
		if last == nil {
			return nil
		}
		if h.stopped.Load() {
			return ErrStopped
		}
		if err := h.exited("monitor", h.nodes[0].Name, h.nodes[1].Name); err != nil {
			return fmt.Errorf("pgtest: %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: %s: %w; last: %w\nlast monitor events:\n%s", what, ctx.Err(), last, h.recentEvents(ctx))
		case <-time.After(haPollInterval):
		}
	}
}

// recentEvents returns the monitor's last events, which tell why a failover is stuck. ctx may be done.
func (h *HA) recentEvents(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	events, err := h.events(ctx, 10)
	if err != nil {
		return fmt.Sprintf("(cannot read events: %v)", err)
	}
	return strings.Join(events, "\n")
}

// Events returns the monitor's last 1000 events, oldest first, one line each: the time, the node, its reported and assigned
// states, timeline, WAL position and replication state as last reported, and what the monitor said. They tell what pg_auto_failover did, and when, in a failover a test found wrong.
func (h *HA) Events(ctx context.Context) ([]string, error) {
	return h.events(ctx, 1000)
}

func (h *HA) events(ctx context.Context, limit int) ([]string, error) {
	if h.stopped.Load() {
		return nil, ErrStopped
	}
	rows, err := h.monitor.Query(ctx, `SELECT format('%s %s %s/%s tli %s lsn %s rep %s: %s', eventtime::time(3), nodename,
		reportedstate, goalstate, reportedtli, reportedlsn, coalesce(reportedrepstate, '-'), description)
		FROM pgautofailover.event ORDER BY eventid DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("pgtest: monitor events: %w", err)
	}
	events, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgtest: monitor events: %w", err)
	}
	slices.Reverse(events)
	return events, nil
}

func (h *HA) node(name string) HANode {
	if name == h.nodes[1].Name {
		return h.nodes[1]
	}
	return h.nodes[0]
}

func (h *HA) other(n HANode) HANode {
	if n == h.nodes[0] {
		return h.nodes[1]
	}
	return h.nodes[0]
}
